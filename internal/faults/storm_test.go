package faults_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

var errBoom = errors.New("boom")

// Scenario 7: a storm of 10,000 Fetch calls over 500 keys, from two Groups
// standing for two processes (one failing open after a short LockWait, one
// FailClosed), with random deadlines, force refreshes and TTLs, and fns that
// succeed, fail, panic, call runtime.Goexit or block until cancelled.
// Afterwards no advisory lock is held, no pool connection is acquired, the
// Lockers hold and await nothing, and once the Lockers (their lock
// sessions), pools and clients are closed no goroutine is left. It runs with
// the default lock session, then in transaction mode.
//
// The test is not parallel: goleak sees every goroutine of the process, so
// it runs alone, while the parallel tests wait for it.
func TestCancellationStorm(t *testing.T) {
	ctx := context.Background()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	for _, tc := range []struct {
		name string
		opts []pglock.Option
	}{
		{"session", nil},
		{"transaction", []pglock.Option{pglock.WithTransactionMode(), pglock.WithMaxConns(32)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testStorm(ctx, t, pg.URL(), rd.URL(), tc.opts)
		})
	}
}

// testStorm runs scenario 7 with Lockers configured by opts.
func testStorm(ctx context.Context, t *testing.T, pgURL, redisURL string, opts []pglock.Option) {
	ignore := goleak.IgnoreCurrent()
	ns := namespace(t)

	type side struct {
		pool   *pgxpool.Pool
		rdb    *redis.Client
		locker *pglock.Locker
		g      *pgflight.Group
	}
	open := func(cfg pgflight.Config) side {
		pcfg, err := pgxpool.ParseConfig(pgURL)
		if err != nil {
			t.Fatal(err)
		}
		pcfg.MaxConns = 40
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			t.Fatal(err)
		}
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		s := side{pool: pool, rdb: redis.NewClient(opt)}
		s.locker = pglock.New(pool, opts...)
		cfg.Namespace, cfg.Cache, cfg.Locker, cfg.Logger = ns, redisstore.New(s.rdb), s.locker, discard
		if s.g, err = pgflight.New(cfg); err != nil {
			t.Fatal(err)
		}
		return s
	}
	sides := []side{
		open(pgflight.Config{LockWait: 20 * time.Millisecond}),
		open(pgflight.Config{FailClosed: true}),
	}

	const calls, keys, workers = 10000, 500, 100
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range calls / workers {
				key := fmt.Sprintf("k%d", rng.IntN(keys))
				si := rng.IntN(len(sides))
				cctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(50))*time.Millisecond)
				opts := []pgflight.Option{pgflight.WithTTL(time.Duration(1+rng.IntN(50)) * time.Millisecond)}
				if rng.IntN(5) == 0 {
					opts = append(opts, pgflight.WithForceRefresh())
				}
				// fn may outlive this iteration, so it draws nothing from rng.
				mode, work := rng.IntN(6), time.Duration(rng.IntN(20))*time.Millisecond
				v, err := pgflight.Fetch(cctx, sides[si].g, key, func(ctx context.Context) (string, error) {
					switch mode {
					case 0:
						return "", errBoom
					case 1:
						panic("storm")
					case 2:
						runtime.Goexit()
					case 3:
						<-ctx.Done() // until every caller of the flight has gone
						return "", ctx.Err()
					}
					select {
					case <-time.After(work):
					case <-ctx.Done():
						return "", ctx.Err()
					}
					return value(key), nil
				}, opts...)
				cancel()
				var pe *pgflight.PanicError
				outcome := "unexpected: "
				switch {
				case err == nil && v == value(key):
					outcome = "value"
				case err == nil:
					outcome += fmt.Sprintf("value %q for key %q", v, key)
				case errors.Is(err, errBoom):
					outcome = "fn's error"
				case errors.As(err, &pe):
					outcome = "panic"
				case errors.Is(err, pgflight.ErrGoexit):
					outcome = "Goexit"
				case errors.Is(err, context.DeadlineExceeded):
					outcome = "deadline"
				case si == 1 && errors.Is(err, pgflight.ErrLockUnavailable):
					outcome = "lock unavailable (FailClosed)"
				default:
					outcome += err.Error()
				}
				mu.Lock()
				outcomes[outcome]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	var names []string
	for o := range outcomes {
		names = append(names, o)
	}
	sort.Strings(names)
	total := 0
	for _, o := range names {
		total += outcomes[o]
		if len(o) > 11 && o[:11] == "unexpected:" {
			t.Errorf("%d × %s", outcomes[o], o)
		} else {
			t.Logf("%5d × %s", outcomes[o], o)
		}
	}
	if total != calls {
		t.Errorf("outcomes = %d, want %d", total, calls)
	}
	for i, s := range sides {
		if err := s.g.Close(); err != nil {
			t.Error(err)
		}
		st := s.g.Stats()
		t.Logf("Group %d: %d computations, %d panics and Goexits, %d fail-opens, %d lock timeouts, %d received, %d coalesced",
			i, st.Computations, st.Panics, st.FailOpens, st.LockTimeouts, st.Received, st.Coalesced)
		if n := s.locker.InUse(); n != 0 {
			t.Errorf("Group %d: Locker InUse() = %d after Close, want 0", i, n)
		}
		// pglock closes a connection whose wait was cancelled, and the pool
		// destroys it in a goroutine of its own (puddle's Destroy), counting
		// it acquired until its close returns.
		eventually(t, fmt.Sprintf("Group %d's pool has no connection acquired", i), func() bool {
			return s.pool.Stat().AcquiredConns() == 0
		})
		// A release may still be finishing: flights return to their
		// callers before they release the lock.
		eventually(t, fmt.Sprintf("Group %d's Locker holds and awaits nothing", i), func() bool {
			st := s.locker.Stats()
			return st.Held == 0 && st.Awaited == 0
		})
		ls := s.locker.Stats()
		t.Logf("Group %d's Locker: %d ops in %d round trips, %d notifications, %d probes (%d woke a follower), %d connections, %d lost",
			i, ls.Ops, ls.RoundTrips, ls.Notifications, ls.Probes, ls.ProbeWakes, ls.Connects, ls.SessionLosses)
	}
	obs, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	noLocksLeft(t, obs)
	measured(t, t.Name()+": storm over → no advisory lock in pg_locks", time.Since(start))
	obs.Close()
	// The lock session has a goroutine per Locker: Close ends it.
	for _, s := range sides {
		if err := s.locker.Close(); err != nil {
			t.Error(err)
		}
		s.pool.Close()
		s.rdb.Close()
	}
	// pgx ends a cancelled connection in a goroutine of its own (a cancel
	// request, then Terminate); give those a moment, polling, as goleak's
	// own retries last well under a second.
	start = time.Now()
	for {
		err := goleak.Find(ignore)
		if err == nil {
			break
		}
		if time.Since(start) > patience {
			t.Fatalf("goroutines left %v after the pools and clients were closed: %v", patience, err)
		}
	}
	measured(t, t.Name()+": Lockers, pools and clients closed → no goroutine left", time.Since(start))
}
