package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// notInstalledError reports a server binary that is not installed.
type notInstalledError struct {
	name  string // the binary
	where string // where it was looked for
	pkg   string // the Debian package that brings it
}

func (e *notInstalledError) Error() string {
	return fmt.Sprintf("%s not found in %s; install it with: apt-get install -y %s", e.name, e.where, e.pkg)
}

// lookPath finds the binary name in PATH or, failing that, in /usr/sbin,
// where Debian puts some daemons.
func lookPath(name, pkg string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	if path := filepath.Join("/usr/sbin", name); isExecutable(path) {
		return path, nil
	}
	return "", &notInstalledError{name, "PATH or /usr/sbin", pkg}
}

// postgresBinDir returns the directory that holds initdb and postgres: that
// of initdb in PATH, or else the newest /usr/lib/postgresql/*/bin, where
// Debian installs them.
func postgresBinDir() (string, error) {
	if path, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(path)
		if isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(dir string) bool {
		return !isExecutable(filepath.Join(dir, "initdb")) || !isExecutable(filepath.Join(dir, "postgres"))
	})
	if len(dirs) == 0 {
		return "", &notInstalledError{"initdb", "PATH or /usr/lib/postgresql/*/bin", "postgresql"}
	}
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(versionOf(a), versionOf(b)) })
	return dirs[len(dirs)-1], nil
}

// versionOf returns the version directory of /usr/lib/postgresql/VERSION/bin.
func versionOf(binDir string) string { return filepath.Base(filepath.Dir(binDir)) }

// compareVersions compares dotted versions numerically, so that 10 > 9.6.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// serverCredential returns whom to run PostgreSQL and PgBouncer as. They
// refuse to run as root, so root runs them as the postgres user, which the
// Debian package creates; anyone else runs them as themselves (nil).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, so the server must run as the postgres user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user: gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// makeDir creates a fresh temporary directory named for prefix, owned by
// cred's user if cred is not nil.
func makeDir(prefix string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", "pgflight-"+prefix+"-")
	if err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}
