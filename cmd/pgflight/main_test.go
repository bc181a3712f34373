package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

// TestMain runs the tests, unless the demo re-executed this test binary as
// one of its workers (os.Executable is the test binary here): then it runs
// main, as the pgflight binary would.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		main()
		os.Exit(0)
	}
	testserver.Main(m)
}

// runCmd runs the command line args and returns what it wrote.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err = run(ctx, args, &out, &errb)
	return out.String(), errb.String(), err
}

// A row is one mode's line of the demo's table.
type row struct {
	calls, computations, errors int
	peakConns                   string
}

// parseTable returns the rows of the demo's table by mode.
func parseTable(t *testing.T, out string) map[string]row {
	t.Helper()
	rows := make(map[string]row)
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 9 || !slices.Contains([]string{modeNone, modeLocal, modePgflight}, f[0]) {
			continue
		}
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("row %q: %v", line, err)
			}
			return n
		}
		rows[f[0]] = row{calls: atoi(f[1]), computations: atoi(f[2]), errors: atoi(f[8]), peakConns: f[7]}
	}
	return rows
}

// closedURL returns a URL with the given scheme and path on a port of
// 127.0.0.1 where nothing listens.
func closedURL(t *testing.T, scheme, path string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return scheme + "://" + addr + path
}

// The demo on real servers: 3 processes x 10 goroutines, three modes (the
// cold start, which TestDemoColdStart tests, skipped).
func TestDemo(t *testing.T) {
	pgURL, redisURL := testserver.PostgresURL(t), testserver.RedisURL(t)
	out, errOut, err := runCmd(t, "demo", "-procs", "3", "-goroutines", "10", "-compute", "300ms", "-cold-keys", "0",
		"-database-url", pgURL, "-redis-url", redisURL)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if !strings.Contains(out, "3 processes x 10 goroutines") {
		t.Errorf("header does not say 3 processes x 10 goroutines")
	}
	if strings.Contains(out, "not reachable") {
		t.Errorf("demo fell back although both servers run")
	}
	rows := parseTable(t, out)
	for _, mode := range []string{modeNone, modeLocal, modePgflight} {
		r, ok := rows[mode]
		if !ok {
			t.Fatalf("no row for mode %s", mode)
		}
		if r.calls != 30 {
			t.Errorf("%s: calls = %d, want 30", mode, r.calls)
		}
		if r.errors != 0 {
			t.Errorf("%s: errors = %d, want 0", mode, r.errors)
		}
	}
	// Without coordination every call that misses computes; how many miss
	// depends on scheduling (a caller that starts after the first SET
	// hits), so on a loaded machine it can be fewer than 30.
	if n := rows[modeNone].computations; n < 2 || n > 30 {
		t.Errorf("none: computations = %d, want 2 to 30 (no coordination)", n)
	}
	if n := rows[modeLocal].computations; n < 1 || n > 3 {
		t.Errorf("local: computations = %d, want 1 to 3 (at most one per process)", n)
	}
	if n := rows[modePgflight].computations; n != 1 {
		t.Errorf("pgflight: computations = %d, want 1", n)
	}
	// Each pgflight worker holds one warm session from before the barrier
	// until it exits; the other modes use none.
	for mode, want := range map[string]string{modeNone: "0", modeLocal: "0", modePgflight: "3"} {
		if got := rows[mode].peakConns; got != want {
			t.Errorf("%s: peak PG conns = %s, want %s", mode, got, want)
		}
	}
	if !strings.Contains(out, "pgflight: 1 computation for 30 calls across 3 processes") {
		t.Errorf("no conclusion line for 1 computation across 3 processes")
	}
	if strings.Contains(out, "cold start") {
		t.Errorf("cold start shown although -cold-keys is 0")
	}

	// Lock hygiene: the workers left no advisory lock behind.
	pool, err := pgxpool.New(context.Background(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	locks, err := pglock.New(pool).Held(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range locks {
		if strings.HasPrefix(l.ApplicationName, "pgflight-demo-") {
			t.Errorf("lock left behind by a worker: %+v", l)
		}
	}
}

// Without PostgreSQL or Redis the demo says so and runs in one process on
// the embedded default.
func TestDemoFallback(t *testing.T) {
	for _, tc := range []struct {
		name, pgURL, redisURL, missing string
	}{
		{"no postgres", closedURL(t, "postgres", "/postgres"), testserver.RedisURL(t), "PostgreSQL is not reachable"},
		{"no redis", testserver.PostgresURL(t), closedURL(t, "redis", "/0"), "Redis is not reachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCmd(t, "demo", "-procs", "3", "-goroutines", "10", "-compute", "50ms",
				"-database-url", tc.pgURL, "-redis-url", tc.redisURL)
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			if err != nil {
				t.Fatalf("demo: %v", err)
			}
			for _, want := range []string{tc.missing, "falling back to the embedded default"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			rows := parseTable(t, out)
			if _, ok := rows[modeLocal]; ok || len(rows) != 2 {
				t.Errorf("rows = %v, want none and pgflight only", rows)
			}
			if r := rows[modeNone]; r.calls != 30 || r.computations != 30 || r.peakConns != "-" {
				t.Errorf("none = %+v, want 30 calls, 30 computations, peak -", r)
			}
			if r := rows[modePgflight]; r.calls != 30 || r.computations != 1 || r.errors != 0 || r.peakConns != "-" {
				t.Errorf("pgflight = %+v, want 30 calls, 1 computation, 0 errors, peak -", r)
			}
		})
	}
}

// A worker that fails, talks nonsense or never gets ready fails the mode,
// and no worker is left running.
func TestFleetWorkerFailure(t *testing.T) {
	for _, tc := range []struct {
		name, script, wantErr string
	}{
		{"exits", "exit 3", "exit status 3"},
		{"talks nonsense", "echo hello", `said "hello", want ready`},
		{"hangs", `echo $$ >> "$0.pids"; exec sleep 60`, "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exe := filepath.Join(t.TempDir(), "worker")
			if err := os.WriteFile(exe, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			f := &fleet{exe: exe, procs: 2, goroutines: 1, compute: time.Millisecond,
				stderr: io.Discard, ready: 500 * time.Millisecond, slack: time.Second}
			_, err := f.run(context.Background(), modeNone, "ns")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
			pids, _ := os.ReadFile(exe + ".pids")
			for _, pid := range strings.Fields(string(pids)) {
				n, _ := strconv.Atoi(pid)
				if err := syscall.Kill(n, 0); !errors.Is(err, syscall.ESRCH) {
					t.Errorf("worker %d still there after run returned (kill 0: %v)", n, err)
				}
			}
			if tc.name == "hangs" && len(strings.Fields(string(pids))) != 2 {
				t.Errorf("pids = %q, want the 2 workers'", pids)
			}
		})
	}
}

// locks lists a held lock and a waiter blocked by its holder.
func TestLocks(t *testing.T) {
	pgURL := testserver.PostgresURL(t)
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	const app = "pgflight-test-locks"
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Transaction mode: its waiter waits inside PostgreSQL, so pg_locks
	// shows it (a waiter of the default session mode waits in-process).
	lk := pglock.New(pool, pglock.WithTransactionMode(), pglock.WithMaxConns(2))
	id := pgflight.LockID("cmd-test", t.Name())
	unlock, err := lk.Lock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(ctx)
	wctx, cancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() {
		u, err := lk.Lock(wctx, id)
		if err == nil {
			u(ctx)
		}
		waited <- err
	}()
	defer func() { cancel(); <-waited }()
	var holder, waiter pglock.Lock
	for deadline := time.Now().Add(10 * time.Second); waiter.PID == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never showed in pg_locks")
		}
		locks, err := lk.Held(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range locks {
			switch {
			case l.ID == id && l.Granted:
				holder = l
			case l.ID == id:
				waiter = l
			}
		}
	}

	out, errOut, err := runCmd(t, "locks", "-database-url", pgURL)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if err != nil {
		t.Fatalf("locks: %v", err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "advisory locks in ") ||
		strings.Join(strings.Fields(lines[1]), " ") != "pid lock id hex mode granted waiting blocked by application_name" {
		t.Errorf("no header")
	}
	var gotHolder, gotWaiter bool
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 8 || f[1] != strconv.FormatInt(id, 10) {
			continue
		}
		if want := fmt.Sprintf("%016x", uint64(id)); f[2] != want {
			t.Errorf("hex = %s, want %s", f[2], want)
		}
		if f[7] != app {
			t.Errorf("application_name = %s, want %s", f[7], app)
		}
		switch f[0] {
		case strconv.Itoa(int(holder.PID)):
			gotHolder = true
			if f[3] != "ExclusiveLock" || f[4] != "true" || f[5] != "-" {
				t.Errorf("holder row %q, want ExclusiveLock true -", line)
			}
		case strconv.Itoa(int(waiter.PID)):
			gotWaiter = true
			if f[4] != "false" || !strings.HasSuffix(f[5], "ms") || f[6] != strconv.Itoa(int(holder.PID)) {
				t.Errorf("waiter row %q, want granted false, waiting in ms, blocked by %d", line, holder.PID)
			}
		}
	}
	if !gotHolder || !gotWaiter {
		t.Errorf("holder listed %v, waiter listed %v; want both", gotHolder, gotWaiter)
	}
}

// Bad command lines fail with the usage; help does not.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantErr    string // "" for success
		wantStdout string
		wantStderr string
	}{
		{"no command", nil, "no command", "", "usage: pgflight"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, "", "usage: pgflight"},
		{"help", []string{"help"}, "", "usage: pgflight", ""},
		{"demo help", []string{"demo", "-h"}, "", "", "-procs"},
		{"bad flag", []string{"demo", "-nope"}, "-nope", "", "usage: pgflight demo"},
		{"bad procs", []string{"demo", "-procs", "0"}, "-procs", "", "usage: pgflight demo"},
		{"extra argument", []string{"locks", "now"}, `unexpected argument "now"`, "", "usage: pgflight locks"},
		{"interval without watch", []string{"locks", "-interval", "2s"}, "need -watch", "", "usage: pgflight locks"},
		{"zero interval", []string{"locks", "-watch", "-interval", "0s"}, "-interval must be positive", "", "usage: pgflight locks"},
		{"locks help", []string{"locks", "-h"}, "", "", "-watch"},
		{"inspect help", []string{"inspect", "-h"}, "", "", "Exit status: 0"},
		{"inspect without key", []string{"inspect"}, "no KEY", "", "usage: pgflight inspect"},
		{"inspect two keys", []string{"inspect", "a", "-value", "b"}, `unexpected argument "b"`, "", "usage: pgflight inspect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCmd(t, tc.args...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if !strings.Contains(out, tc.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", out, tc.wantStdout)
			}
			if !strings.Contains(errOut, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tc.wantStderr)
			}
		})
	}
}

// Connection settings come from the flag, else the environment, else the
// default, and passwords never reach the output.
func TestConnectionSettings(t *testing.T) {
	for _, v := range append(pgEnvVars, "DATABASE_URL", "REDIS_URL") {
		t.Setenv(v, "")
	}
	if got := resolvePostgres(""); got.connString != defaultDatabaseURL || got.source != "default" {
		t.Errorf("nothing set: postgres = %+v, want the default", got)
	}
	if got := resolveRedis(""); got.url != defaultRedisURL || got.source != "default" {
		t.Errorf("nothing set: redis = %+v, want the default", got)
	}
	t.Setenv("PGHOST", "db.example")
	t.Setenv("PGUSER", "alice")
	if got := resolvePostgres(""); got.connString != "" || !strings.Contains(got.String(), "alice@db.example") {
		t.Errorf("PGHOST set: postgres = %+v (%s), want pgx's environment handling", got, got)
	}
	t.Setenv("DATABASE_URL", "postgres://bob:s3cret@env.example/app")
	t.Setenv("REDIS_URL", "redis://:s3cret@env.example:6380/1")
	if got := resolvePostgres(""); got.source != "DATABASE_URL" || got.String() != "postgres://bob:xxxxx@env.example/app" {
		t.Errorf("DATABASE_URL set: postgres = %+v, shown as %s", got, got)
	}
	if got := resolveRedis(""); got.source != "REDIS_URL" || got.String() != "redis://:xxxxx@env.example:6380/1" {
		t.Errorf("REDIS_URL set: redis = %+v, shown as %s", got, got)
	}
	if got := resolvePostgres("host=flag.example password='a b' user=carol"); got.source != "-database-url" || strings.Contains(got.String(), "a b") {
		t.Errorf("flag: postgres = %+v, shown as %s", got, got)
	}
	if got := resolveRedis("redis://flag.example:6379/0"); got.source != "-redis-url" {
		t.Errorf("flag: redis = %+v, want from -redis-url", got)
	}
}
