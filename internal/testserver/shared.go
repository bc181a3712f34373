package testserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// Environment variables that name running servers for the tests. When one
// is set, [PostgresURL] or [RedisURL] returns it and starts nothing.
const (
	DatabaseURLEnv = "PGFLIGHT_TEST_DATABASE_URL"
	RedisURLEnv    = "PGFLIGHT_TEST_REDIS_URL"
)

// The servers shared by the tests of one test binary. This is the one piece
// of package state, and it is the point of the package: initdb takes
// seconds, so a test binary starts its server once and [Main] stops it.
var (
	sharedPostgres = shared{
		env: DatabaseURLEnv,
		pkg: "postgresql",
		start: func() (io.Closer, string, error) {
			p, err := StartPostgres(PostgresOptions{})
			if err != nil {
				return nil, "", err
			}
			return p, p.URL(), nil
		},
	}
	sharedRedis = shared{
		env: RedisURLEnv,
		pkg: "redis-server",
		start: func() (io.Closer, string, error) {
			r, err := StartRedis()
			if err != nil {
				return nil, "", err
			}
			return r, r.URL(), nil
		},
	}
)

// PostgresURL returns the URL of a PostgreSQL server for tests: the value
// of PGFLIGHT_TEST_DATABASE_URL if it is set, or else that of a server
// that the first call starts and that [Main] stops after the tests. The
// first call then sets PGFLIGHT_TEST_DATABASE_URL, so that child processes
// re-executing the test binary inherit it and use the same server.
//
// If no server can be started, PostgresURL fails the test with tb.Fatalf
// and says which package to install; it never skips. Every later call
// fails the same way without trying again.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	return sharedPostgres.url(tb)
}

// RedisURL returns the URL of a Redis server for tests, redis://HOST:PORT/0:
// the value of PGFLIGHT_TEST_REDIS_URL if it is set, or else that of a
// server that the first call starts and that [Main] stops after the tests.
// The first call then sets PGFLIGHT_TEST_REDIS_URL for child processes,
// as [PostgresURL] does.
//
// If no server can be started, RedisURL fails the test with tb.Fatalf and
// says which package to install; it never skips.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return sharedRedis.url(tb)
}

// Main runs the tests and then stops the servers that [PostgresURL],
// [RedisURL] and [RedisClusterURL] started, and exits with the tests' exit
// code. A test binary that uses them calls it from TestMain:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := errors.Join(sharedPostgres.close(), sharedRedis.close(), sharedRedisCluster.close()); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// shared is a server started on first use and named by an environment
// variable from then on.
type shared struct {
	env   string // names the server's URL
	pkg   string // the Debian package that brings the server
	start func() (io.Closer, string, error)

	mu  sync.Mutex
	srv io.Closer // the server this process started, if any
	err error     // why it could not be started
}

func (s *shared) url(tb testing.TB) string {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		if url := os.Getenv(s.env); url != "" {
			return url
		}
		var url string
		s.srv, url, s.err = s.start()
		if s.err == nil {
			os.Setenv(s.env, url)
			return url
		}
	}
	if ni := (*notInstalledError)(nil); errors.As(s.err, &ni) {
		tb.Fatalf("%v (or set %s to the URL of a running server)", s.err, s.env)
	}
	tb.Fatalf("%v\ninstall it with: apt-get install -y %s (or set %s to the URL of a running server)", s.err, s.pkg, s.env)
	return ""
}

func (s *shared) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	os.Unsetenv(s.env)
	err := s.srv.Close()
	s.srv = nil
	return err
}
