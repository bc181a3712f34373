package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// A machine describes where a run took place. Its fields are exported for
// encoding/gob (see snapshot.go).
type machine struct {
	Cores      int       // runtime.NumCPU
	CPU        string    // model name from /proc/cpuinfo
	Kernel     string    // "Linux " and /proc/sys/kernel/osrelease
	GoVersion  string    // runtime.Version
	Postgres   string    // server_version
	Redis      string    // redis_version
	LoadBefore string    // /proc/loadavg at the start
	LoadAfter  string    // and at the end
	Floors     []floor   // see measureFloors
	Date       time.Time // of the start, in UTC
	Revision   string    // of the pgflight repository the bench was built in
}

// A floor is the median latency of one elementary operation on loopback.
type floor struct {
	Name string        // the operation
	RTTs int           // its round trips
	P50  time.Duration // its median latency
}

// describeMachine reads the machine's and the servers' descriptions.
func describeMachine(ctx context.Context, conn *pgx.Conn, rdb *redis.Client) (machine, error) {
	m := machine{Cores: runtime.NumCPU(), CPU: cpuModel(), GoVersion: runtime.Version(),
		LoadBefore: loadavg(), Date: time.Now().UTC()}
	m.Revision = revision()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if err := conn.QueryRow(ctx, "show server_version").Scan(&m.Postgres); err != nil {
		return m, fmt.Errorf("postgres version: %w", err)
	}
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return m, fmt.Errorf("redis version: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			m.Redis = v
		}
	}
	return m, nil
}

// revision describes the commit of the repository around the working
// directory (the bench module's, so ".." is the library measured): the
// last commit that changed the library's Go code, the commit checked out,
// and whether the library's Go code differs from it.
func revision() string {
	// Lexically, as Go resolves the module's replace directive: ".." of a
	// symlinked bench directory is the directory holding the link.
	root := ".."
	if wd, err := os.Getwd(); err == nil {
		root = filepath.Dir(wd)
	}
	library := []string{"--", "*.go", "go.mod", "go.sum", ":(exclude)bench"}
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	last, err := git(append([]string{"log", "-1", "--format=%h %s"}, library...)...)
	if err != nil {
		return "unknown (not a git checkout)"
	}
	head, _ := git("log", "-1", "--format=%h")
	rev := fmt.Sprintf("%s (the last change to the library's Go code; checkout at %s)", last, head)
	if dirty, err := git(append([]string{"status", "--porcelain", "--untracked-files=no"}, library...)...); err == nil && dirty != "" {
		rev += ", with uncommitted changes to the library"
	}
	return rev
}

// cpuModel returns the first model name in /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadavg returns the three load averages of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// floorRounds is how many times measureFloors times each operation.
const floorRounds = 1000

// measureFloors times the operations every contender is made of, on the
// monitor's connections, in turn.
func measureFloors(ctx context.Context, conn *pgx.Conn, rdb *redis.Client) ([]floor, error) {
	key := fmt.Sprintf("pgflight-bench:floor:%d", os.Getpid())
	if err := rdb.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		return nil, err
	}
	defer rdb.Del(context.WithoutCancel(ctx), key)
	pg := conn.PgConn()
	ops := []struct {
		name string
		rtts int
		op   func() error
	}{
		{"Redis GET (hit)", 1, func() error { return rdb.Get(ctx, key).Err() }},
		{"PostgreSQL `select 1`", 1, func() error { return pg.Exec(ctx, "select 1").Close() }},
		{"`begin; select pg_try_advisory_xact_lock(id)` + `commit` (pglock's holder)", 2, func() error {
			return errors.Join(pg.Exec(ctx, "begin; select pg_try_advisory_xact_lock(8123456789)").Close(),
				pg.Exec(ctx, "commit").Close())
		}},
		{"`begin` + `select pg_advisory_xact_lock($1)` + `commit` (the recipe, pgx Begin/Exec/Commit)", 3, func() error {
			tx, err := conn.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, recipeLockSQL, int64(8123456789)); err != nil {
				tx.Rollback(ctx)
				return err
			}
			return tx.Commit(ctx)
		}},
	}
	// Round robin, so that every operation sees the same background load.
	d := make([][]int64, len(ops))
	for range floorRounds {
		for i, o := range ops {
			t := time.Now()
			if err := o.op(); err != nil {
				return nil, fmt.Errorf("%s: %w", o.name, err)
			}
			d[i] = append(d[i], int64(time.Since(t)))
		}
	}
	var floors []floor
	for i, o := range ops {
		slices.Sort(d[i])
		floors = append(floors, floor{o.name, o.rtts, time.Duration(percentile(d[i], 0.5))})
	}
	return floors, nil
}
