package faults_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

// startPgBouncer starts a PgBouncer in front of pg, closed at cleanup.
func startPgBouncer(t *testing.T, pg *testserver.Postgres, mode string) *testserver.PgBouncer {
	t.Helper()
	b, err := testserver.StartPgBouncer(pg, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// Scenario 6: PgBouncer between pgflight and PostgreSQL. Worker processes
// build their pool from the pooler's plain connection string, so pgx's
// default statement cache is on; pglock's simple-protocol statements work
// anyway. In transaction and session pooling modes the fleet computes each
// key once, with no caller error and no lock taken without the cluster, and
// a killed holder is replaced. Statement pooling cannot hold a transaction:
// every lock fails, and pgflight computes without it (or refuses, with
// FailClosed).
func TestPgBouncer(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	rdb := newRedis(t, rd.URL())
	obs := newPool(t, pg.URL())
	for _, mode := range []string{"transaction", "session"} {
		t.Run(mode, func(t *testing.T) {
			b := startPgBouncer(t, pg, mode)
			ns := namespace(t)
			const workers, callers = 4, 20
			f := startFleet(t, workers, workerConfig{DB: b.URL(), Redis: rd.URL(), Namespace: ns})
			for r := range 3 {
				key := fmt.Sprintf("k%d", r)
				send(t, f.ws, command{Op: "fetch", Round: key, Keys: []string{key}, Goroutines: callers, Work: sleepWork, Sleep: 200 * time.Millisecond, Timeout: patience})
				values := map[string]int{}
				var failOpens uint64
				for _, ev := range awaitAll(t, f.ws, key) {
					failOpens += ev.Stats.FailOpens
					for _, c := range ev.Calls {
						if c.Err != "" {
							t.Errorf("round %d: a caller got %s", r, c.Err)
							continue
						}
						checkValue(t, key, c.Value)
						values[c.Value]++
					}
				}
				if n := computations(t, rdb, ns, key); n != 1 {
					t.Errorf("round %d: computations = %d, want 1", r, n)
				}
				if len(values) != 1 {
					t.Errorf("round %d: values %v, want one", r, values)
				}
				if failOpens != 0 {
					t.Errorf("round %d: %d flights computed without the lock so far, want 0", r, failOpens)
				}
			}
			stop(t, f.ws)
			noLocksLeft(t, obs)
			t.Run("holder killed", func(t *testing.T) {
				testHolderKilled(t, b.URL(), pg.URL(), rd.URL(), 3)
			})
		})
	}
	t.Run("statement", func(t *testing.T) {
		ctx := context.Background()
		b := startPgBouncer(t, pg, "statement")
		open := newGroup(t, pgflight.Config{Locker: pglock.New(newPool(t, b.URL())), Logger: discard})
		closed := newGroup(t, pgflight.Config{Locker: pglock.New(newPool(t, b.URL())), FailClosed: true, Logger: discard})
		v, err := pgflight.Fetch(ctx, open, "k", func(context.Context) (string, error) { return value("k"), nil })
		if err != nil || v != value("k") {
			t.Errorf("fail-open Fetch through statement pooling = %q, %v; want the value", v, err)
		}
		if s := open.Stats(); s.FailOpens != 1 {
			t.Errorf("fail-opens = %d, want 1: statement pooling refuses transactions", s.FailOpens)
		}
		_, err = pgflight.Fetch(ctx, closed, "k", func(context.Context) (string, error) { return value("k"), nil })
		if !errors.Is(err, pgflight.ErrLockUnavailable) {
			t.Errorf("FailClosed Fetch through statement pooling: %v, want ErrLockUnavailable", err)
		}
		t.Logf("statement pooling: %v", err)
		noLocksLeft(t, obs)
	})
}
