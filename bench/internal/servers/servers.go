// Package servers starts throwaway PostgreSQL and Redis servers for the
// bench module's tests: a fresh temporary directory, a free port on
// 127.0.0.1, trust authentication, no durability. The root module's
// internal/testserver does the same for the library, but a module cannot
// import another module's internal packages.
//
// PGFLIGHT_TEST_DATABASE_URL and PGFLIGHT_TEST_REDIS_URL name servers to
// use instead. A missing binary is an error that names the package to
// install.
package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// readyTimeout bounds how long a start waits for its server to answer.
const readyTimeout = 30 * time.Second

// A Server is a running server, or one named by the environment.
type Server struct {
	URL string
	cmd *exec.Cmd // nil when named by the environment
	dir string
}

// Postgres starts a PostgreSQL server, or returns the one named by
// PGFLIGHT_TEST_DATABASE_URL. Run as root, the server runs as the postgres
// user, because PostgreSQL refuses to run as root.
func Postgres() (*Server, error) {
	if u := os.Getenv("PGFLIGHT_TEST_DATABASE_URL"); u != "" {
		return &Server{URL: u}, nil
	}
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	s, err := newServer("postgres", cred)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		s.Close()
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	err = s.start(cred, filepath.Join(bin, "postgres"), []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"},
		func(ctx context.Context) error {
			c, err := pgconn.Connect(ctx, s.URL)
			if err != nil {
				return err
			}
			return c.Close(ctx)
		})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Redis starts a redis-server, or returns the one named by
// PGFLIGHT_TEST_REDIS_URL.
func Redis() (*Server, error) {
	if u := os.Getenv("PGFLIGHT_TEST_REDIS_URL"); u != "" {
		return &Server{URL: u}, nil
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found in PATH; install it with: apt-get install -y redis-server")
	}
	s, err := newServer("redis", nil)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	err = s.start(nil, path, []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", ""},
		func(ctx context.Context) error {
			opt, _ := redis.ParseURL(s.URL)
			c := redis.NewClient(opt)
			defer c.Close()
			return c.Ping(ctx).Err()
		})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the server and removes its directory. A server named by the
// environment is left alone.
func (s *Server) Close() error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGINT) // PostgreSQL: fast shutdown; Redis: shutdown
		done := make(chan error, 1)
		go func() { done <- s.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-done
			err = fmt.Errorf("%s did not stop within 10s; killed it", s.cmd.Path)
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	return err
}

// newServer makes the server's temporary directory, owned by cred's user.
func newServer(name string, cred *syscall.Credential) (*Server, error) {
	dir, err := os.MkdirTemp("", "pgflight-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return &Server{dir: dir}, nil
}

// start starts path with args as cred's user and waits until ready
// succeeds. On failure it removes the server and returns the server's log.
func (s *Server) start(cred *syscall.Credential, path string, args []string, ready func(context.Context) error) error {
	log, err := os.Create(filepath.Join(s.dir, "server.log"))
	if err != nil {
		s.Close()
		return err
	}
	defer log.Close()
	s.cmd = exec.Command(path, args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = log, log
	// The kernel kills the server when the test binary dies.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		s.Close()
		return fmt.Errorf("start %s: %w", path, err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			s.Close()
			return fmt.Errorf("%s not ready after %v: %w\n%s", path, readyTimeout, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postgresBin returns the directory of initdb and postgres: that of initdb
// in PATH, else the newest /usr/lib/postgresql/*/bin.
func postgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(d string) bool {
		_, err := os.Stat(filepath.Join(d, "initdb"))
		return err != nil
	})
	if len(dirs) == 0 {
		return "", errors.New("initdb not found in PATH or /usr/lib/postgresql/*/bin; install it with: apt-get install -y postgresql")
	}
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	return dirs[len(dirs)-1], nil
}

// credential returns whom to run PostgreSQL as: the postgres user when
// running as root, else the current user (nil).
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, so PostgreSQL must run as the postgres user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
