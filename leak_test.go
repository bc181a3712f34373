package pgflight_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// The secrets of the connections in TestNoSecretInLogsOrErrors.
const (
	leakPGPassword    = "SECRETpgPW-Lk4"
	leakSSLPassword   = "SECRETsslPW-Lk4"
	leakRedisPassword = "SECRETredisPW-Lk4"
)

// A leakLog is a bytes.Buffer safe for concurrent use, for a log that
// background goroutines may write to. Other tests of the package use it
// too.
type leakLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *leakLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *leakLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The library never shows the secrets of its connections: a Group whose
// PostgreSQL pool and Redis client carry passwords, and whose servers are
// gone, logs warnings and returns errors that name neither password, in
// every path that reports a failed Locker or Cache (fail open, fail
// closed, FetchMany, Delete).
func TestNoSecretInLogsOrErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := fmt.Sprintf("postgres://user:%s@%s/db?sslpassword=%s&connect_timeout=2", leakPGPassword, deadAddr(t), leakSSLPassword)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("pgxpool.New: %v", err) // lazy: it connects on first use
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t), Username: "user", Password: leakRedisPassword,
		MaxRetries: -1, DialerRetries: 1, DialTimeout: 2 * time.Second})
	defer rdb.Close()

	for _, tc := range []struct {
		name       string
		failClosed bool
	}{
		{"fail open", false},
		{"fail closed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log leakLog
			g := newGroup(t, pgflight.Config{
				Cache:      redisstore.New(rdb),
				Locker:     pglock.New(pool),
				FailClosed: tc.failClosed,
				Logger:     slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			var errs []error
			for i := range 3 {
				_, err := pgflight.Fetch(ctx, g, fmt.Sprintf("key-%d", i), func(context.Context) (string, error) { return "v", nil })
				errs = append(errs, err)
			}
			_, err := pgflight.FetchMany(ctx, g, []string{"a", "b"}, func(_ context.Context, missing []string) (map[string]string, error) {
				m := make(map[string]string)
				for _, k := range missing {
					m[k] = "v"
				}
				return m, nil
			})
			errs = append(errs, err, g.Delete(ctx, "key-0"))
			if err := g.Close(); err != nil {
				errs = append(errs, err)
			}

			var out strings.Builder
			out.WriteString(log.String())
			for _, err := range errs {
				if err != nil {
					fmt.Fprintln(&out, err)
				}
			}
			t.Logf("log and errors:\n%s", out.String())
			for _, s := range []string{leakPGPassword, leakSSLPassword, leakRedisPassword, "SECRET"} {
				if strings.Contains(out.String(), s) {
					t.Errorf("log or errors show %q", s)
				}
			}
			// The test can fail only if the failures were reported.
			if tc.failClosed && !errors.Is(errs[0], pgflight.ErrLockUnavailable) {
				t.Errorf("fail closed: Fetch err = %v, want one wrapping ErrLockUnavailable", errs[0])
			}
			if !tc.failClosed && !strings.Contains(log.String(), "level=WARN") {
				t.Errorf("fail open: nothing logged, want warnings of the failed Locker and Cache")
			}
		})
	}
}
