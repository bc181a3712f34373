package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgflight/pgflight/bench/internal/servers"
)

// TestMain runs the worker instead of the tests when the test binary is
// re-executed as one, and stops the servers the tests started.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		if err := runWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	for _, s := range started {
		s.Close()
	}
	os.Exit(code)
}

var (
	serversOnce sync.Once
	started     []*servers.Server
	pgURL       string
	redisURL    string
	serversErr  error
)

// testServers returns the URLs of the PostgreSQL and Redis servers, started
// once for the test binary.
func testServers(t testing.TB) (pg, rdb string) {
	t.Helper()
	serversOnce.Do(func() {
		pg, err := servers.Postgres()
		if err != nil {
			serversErr = err
			return
		}
		started = append(started, pg)
		r, err := servers.Redis()
		if err != nil {
			serversErr = err
			return
		}
		started = append(started, r)
		pgURL, redisURL = pg.URL, r.URL
	})
	if serversErr != nil {
		t.Fatalf("servers: %v", serversErr)
	}
	return pgURL, redisURL
}

// runFleet runs j in procs workers of the test binary.
func runFleet(t *testing.T, j job, procs int, crash bool) *fleetResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	j.DatabaseURL, j.RedisURL = testServers(t)
	// Unique per run, so that -count=N never finds the keys of an earlier
	// run of the same test.
	j.Prefix = fmt.Sprintf("bench-test.%s.%d", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
	j.App = "bench-test-" + t.Name()
	f := &fleet{exe: os.Args[0], procs: procs, job: j, crash: crash, stderr: os.Stderr}
	res, err := f.run(ctx)
	if err != nil {
		t.Fatalf("fleet: %v", err)
	}
	return res
}
