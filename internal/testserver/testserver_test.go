package testserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/internal/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }

func TestPostgres(t *testing.T) {
	t.Parallel()
	p, err := testserver.StartPostgres(testserver.PostgresOptions{
		Settings: map[string]string{"max_connections": "20"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	url := p.URL()
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port()); url != want {
		t.Errorf("URL() = %q, want %q", url, want)
	}
	wantPG(t, url, "select 1", "1")
	wantPG(t, url, "show max_connections", "20")
	wantPG(t, url, "show fsync", "off")

	t.Run("Stop", func(t *testing.T) {
		conn := connectPG(t, url)
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := execPG(conn, time.Second, "select 1"); err == nil {
			t.Error("query on a connection from before Stop succeeded")
		}
		wantPGDown(t, url)
		if err := p.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		wantPG(t, url, "select 1", "1")
		if err := p.Start(); err == nil {
			t.Error("Start of a running server succeeded")
		}
	})

	t.Run("Pause", func(t *testing.T) {
		conn := connectPG(t, url)
		if err := p.Pause(); err != nil {
			t.Fatal(err)
		}
		if _, err := execPG(conn, 300*time.Millisecond, "select 1"); err == nil {
			t.Error("query while paused succeeded")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if c, err := pgconn.Connect(ctx, url); err == nil {
			c.Close(ctx)
			t.Error("connect while paused succeeded")
		}
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		wantPG(t, url, "select 1", "1")
	})

	t.Run("Kill", func(t *testing.T) {
		conn := connectPG(t, url)
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		if _, err := execPG(conn, time.Second, "select 1"); err == nil {
			t.Error("query on a connection from before Kill succeeded")
		}
		wantPGDown(t, url)
		// Start fails if any backend survived: its shared memory is in use.
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		wantPG(t, url, "select 1", "1")
	})

	t.Run("KillPaused", func(t *testing.T) {
		connectPG(t, url)
		if err := p.Pause(); err != nil {
			t.Fatal(err)
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		wantPG(t, url, "select 1", "1")
	})

	t.Run("StopPaused", func(t *testing.T) {
		connectPG(t, url)
		if err := p.Pause(); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		wantPGDown(t, url)
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		wantPG(t, url, "select 1", "1")
	})

	t.Run("Restart", func(t *testing.T) {
		for _, mode := range []string{"fast", "immediate"} {
			conn := connectPG(t, url)
			if err := p.Restart(mode); err != nil {
				t.Fatalf("Restart(%q): %v", mode, err)
			}
			if _, err := execPG(conn, time.Second, "select 1"); err == nil {
				t.Errorf("Restart(%q): query on a connection from before succeeded", mode)
			}
			wantPG(t, url, "select 1", "1")
			wantPG(t, url, "show max_connections", "20")
		}
		if err := p.Restart("smart"); err == nil {
			t.Error(`Restart("smart") succeeded`)
		}
	})

	t.Run("Close", func(t *testing.T) {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		wantPGDown(t, url)
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := p.Start(); err == nil {
			t.Error("Start after Close succeeded")
		}
	})
}

func TestRedis(t *testing.T) {
	t.Parallel()
	r, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	if want := fmt.Sprintf("127.0.0.1:%d", r.Port()); r.Addr() != want {
		t.Errorf("Addr() = %q, want %q", r.Addr(), want)
	}
	if want := "redis://" + r.Addr() + "/0"; r.URL() != want {
		t.Errorf("URL() = %q, want %q", r.URL(), want)
	}
	wantRedisUp(t, r.URL())
	rdb := newRedis(t, r.URL())
	if err := rdb.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	wantRedisDown(t, r.URL())
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	wantRedisUp(t, r.URL())
	if err := rdb.Get(t.Context(), "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET after restart: err = %v, want redis.Nil (no persistence)", err)
	}

	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	wantRedisDown(t, r.URL())
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	wantRedisUp(t, r.URL())

	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	wantRedisDown(t, r.URL())
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	wantRedisUp(t, r.URL())

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wantRedisDown(t, r.URL())
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMemcached(t *testing.T) {
	t.Parallel()
	m, err := testserver.StartMemcached()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	if want := fmt.Sprintf("127.0.0.1:%d", m.Port()); m.Addr() != want {
		t.Errorf("Addr() = %q, want %q", m.Addr(), want)
	}
	wantMemcached(t, m.Addr(), true)

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	wantMemcached(t, m.Addr(), false)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	wantMemcached(t, m.Addr(), true)

	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	wantMemcached(t, m.Addr(), false)
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	wantMemcached(t, m.Addr(), true)

	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	wantMemcached(t, m.Addr(), false)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	wantMemcached(t, m.Addr(), true)

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wantMemcached(t, m.Addr(), false)
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPgBouncer(t *testing.T) {
	t.Parallel()
	p, err := testserver.StartPostgres(testserver.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			b, err := testserver.StartPgBouncer(p, mode)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Error(err)
				}
			})
			url := b.URL()
			if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", b.Port()); url != want {
				t.Errorf("URL() = %q, want %q", url, want)
			}
			wantPG(t, url, "select current_user", "postgres")
			if got := showPoolMode(t, b.Port()); got != mode {
				t.Errorf("pool_mode = %q, want %q", got, mode)
			}

			// The pooler follows its upstream through a restart.
			if err := p.Restart("fast"); err != nil {
				t.Fatal(err)
			}
			wantPG(t, url, "select 1", "1")

			conn := connectPG(t, url)
			if err := b.Stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := execPG(conn, time.Second, "select 1"); err == nil {
				t.Error("query on a connection from before Stop succeeded")
			}
			wantPGDown(t, url)
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			wantPG(t, url, "select 1", "1")

			if err := b.Pause(); err != nil {
				t.Fatal(err)
			}
			wantPGDown(t, url)
			if err := b.Resume(); err != nil {
				t.Fatal(err)
			}
			wantPG(t, url, "select 1", "1")

			if err := b.Kill(); err != nil {
				t.Fatal(err)
			}
			wantPGDown(t, url)
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			wantPG(t, url, "select 1", "1")

			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			wantPGDown(t, url)
			if err := b.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
	if _, err := testserver.StartPgBouncer(p, "bogus"); err == nil {
		t.Error(`StartPgBouncer(p, "bogus") succeeded`)
	}
}

func TestSharedServers(t *testing.T) {
	t.Parallel()
	pgURL := testserver.PostgresURL(t)
	if again := testserver.PostgresURL(t); again != pgURL {
		t.Errorf("second PostgresURL = %q, want %q", again, pgURL)
	}
	if env := os.Getenv(testserver.DatabaseURLEnv); env != pgURL {
		t.Errorf("%s = %q, want %q", testserver.DatabaseURLEnv, env, pgURL)
	}
	wantPG(t, pgURL, "select 1", "1")

	redisURL := testserver.RedisURL(t)
	if again := testserver.RedisURL(t); again != redisURL {
		t.Errorf("second RedisURL = %q, want %q", again, redisURL)
	}
	if env := os.Getenv(testserver.RedisURLEnv); env != redisURL {
		t.Errorf("%s = %q, want %q", testserver.RedisURLEnv, env, redisURL)
	}
	wantRedisUp(t, redisURL)

	// A child process inherits the servers and leaves them running.
	urls := runChild(t, os.Environ())
	if urls[0] != pgURL || urls[1] != redisURL {
		t.Errorf("child used %q, want the parent's %q", urls, []string{pgURL, redisURL})
	}
	wantPG(t, pgURL, "select 1", "1")
	wantRedisUp(t, redisURL)
}

// TestMainStopsServers runs a child test binary without the environment
// variables: it starts servers of its own, and Main stops them at its exit.
func TestMainStopsServers(t *testing.T) {
	t.Parallel()
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, testserver.DatabaseURLEnv+"=") || strings.HasPrefix(kv, testserver.RedisURLEnv+"=")
	})
	urls := runChild(t, env)
	wantPGDown(t, urls[0])
	wantRedisDown(t, urls[1])
}

func TestURLFromEnv(t *testing.T) {
	const pgURL, redisURL = "postgres://example.invalid/db", "redis://example.invalid/0"
	t.Setenv(testserver.DatabaseURLEnv, pgURL)
	t.Setenv(testserver.RedisURLEnv, redisURL)
	if got := testserver.PostgresURL(t); got != pgURL {
		t.Errorf("PostgresURL = %q, want %q", got, pgURL)
	}
	if got := testserver.RedisURL(t); got != redisURL {
		t.Errorf("RedisURL = %q, want %q", got, redisURL)
	}
}

// TestMissingBinary runs a child test binary that cannot find
// redis-server: RedisURL must fail the test, name the package, not skip.
func TestMissingBinary(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1", "-test.v")
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, testserver.RedisURLEnv+"=") || strings.HasPrefix(kv, "PATH=")
	})
	cmd.Env = append(cmd.Env, childEnv+"=redis", "PATH=/nonexistent")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child passed without redis-server in PATH:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestChild", "apt-get install -y redis-server"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("SKIP")) {
		t.Errorf("child skipped:\n%s", out)
	}
}

const childEnv = "PGFLIGHT_TESTSERVER_CHILD"

// TestChild does what runChild or TestMissingBinary asks of it in a child
// process, and nothing otherwise.
func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "urls":
		fmt.Printf("url=%s\nurl=%s\n", testserver.PostgresURL(t), testserver.RedisURL(t))
	case "redis":
		testserver.RedisURL(t)
	}
}

// runChild re-runs the test binary as TestChild with env and returns the
// PostgreSQL and Redis URLs it used.
func runChild(t *testing.T, env []string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
	cmd.Env = append(env, childEnv+"=urls")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s%s", err, out, stderr.Bytes())
	}
	var urls []string
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		if url, ok := strings.CutPrefix(sc.Text(), "url="); ok {
			urls = append(urls, url)
		}
	}
	if len(urls) != 2 {
		t.Fatalf("child printed %d URLs, want 2:\n%s", len(urls), out)
	}
	return urls
}

func connectPG(t *testing.T, url string) *pgconn.PgConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	})
	return conn
}

// execPG runs sql on conn within timeout and returns the first column of
// the first row.
func execPG(conn *pgconn.PgConn, timeout time.Duration, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return "", err
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return "", fmt.Errorf("%q: unexpected result shape", sql)
	}
	return string(res[0].Rows[0][0]), nil
}

// wantPG checks that sql on a new connection to url returns want.
func wantPG(t *testing.T, url, sql, want string) {
	t.Helper()
	got, err := execPG(connectPG(t, url), 5*time.Second, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if got != want {
		t.Errorf("%s = %q, want %q", sql, got, want)
	}
}

// wantPGDown checks that url refuses connections.
func wantPGDown(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if conn, err := pgconn.Connect(ctx, url); err == nil {
		conn.Close(ctx)
		t.Errorf("connect to %s succeeded, want the server gone", url)
	}
}

func newRedis(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.ReadTimeout = 300 * time.Millisecond
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func pingRedis(t *testing.T, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	return newRedis(t, url).Ping(ctx).Err()
}

func wantRedisUp(t *testing.T, url string) {
	t.Helper()
	if err := pingRedis(t, url); err != nil {
		t.Fatalf("PING %s: %v", url, err)
	}
}

func wantRedisDown(t *testing.T, url string) {
	t.Helper()
	if err := pingRedis(t, url); err == nil {
		t.Errorf("PING %s succeeded, want the server gone or frozen", url)
	}
}

// wantMemcached checks that the server at addr answers the version command
// within 300ms, or that it does not.
func wantMemcached(t *testing.T, addr string, up bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err == nil {
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = io.WriteString(conn, "version\r\n")
		if err == nil {
			var line string
			line, err = bufio.NewReader(conn).ReadString('\n')
			if err == nil && !strings.HasPrefix(line, "VERSION ") {
				err = fmt.Errorf("reply %q", line)
			}
		}
	}
	switch {
	case up && err != nil:
		t.Fatalf("memcached at %s: %v", addr, err)
	case !up && err == nil:
		t.Errorf("memcached at %s answered, want it gone or frozen", addr)
	}
}

// showPoolMode returns pool_mode from the admin console of the PgBouncer
// listening on port.
func showPoolMode(t *testing.T, port int) string {
	t.Helper()
	conn := connectPG(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/pgbouncer?sslmode=disable", port))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res, err := conn.Exec(ctx, "SHOW CONFIG").ReadAll()
	if err != nil {
		t.Fatalf("SHOW CONFIG: %v", err)
	}
	for _, r := range res {
		for _, row := range r.Rows {
			if len(row) >= 2 && string(row[0]) == "pool_mode" {
				return string(row[1])
			}
		}
	}
	t.Fatal("SHOW CONFIG: no pool_mode")
	return ""
}
