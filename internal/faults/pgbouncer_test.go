package faults_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
// anyway. Transaction pooling cannot carry a session's locks or LISTEN, so
// there the workers use pglock.WithTransactionMode (a lock per transaction);
// session pooling pins a client to one server connection, and the default
// lock session works. In both the fleet computes each key once, with no
// caller error and no lock taken without the cluster, and a killed holder
// is replaced. The default lock session through transaction pooling refuses
// to start: flights fail open, counted, or fail closed, and say to use
// WithTransactionMode. Statement pooling cannot hold a transaction, nor a
// session: every lock fails, and pgflight computes without it (or refuses,
// with FailClosed).
func TestPgBouncer(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	rdb := newRedis(t, rd.URL())
	obs := newPool(t, pg.URL())
	for _, tc := range []struct {
		mode   string // pool_mode
		txMode bool   // pglock.WithTransactionMode
	}{
		{"transaction", true},
		{"session", false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			b := startPgBouncer(t, pg, tc.mode)
			ns := namespace(t)
			const workers, callers = 4, 20
			f := startFleet(t, workers, workerConfig{DB: b.URL(), Redis: rd.URL(), Namespace: ns, TxMode: tc.txMode})
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
				testHolderKilled(t, workerConfig{DB: b.URL(), Redis: rd.URL(), TxMode: tc.txMode}, pg.URL(), 3)
			})
			if tc.mode == "transaction" {
				t.Run("session default refused", func(t *testing.T) {
					testSessionRefused(t, b, tc.mode, obs)
				})
			}
		})
	}
	t.Run("statement", func(t *testing.T) {
		ctx := context.Background()
		b := startPgBouncer(t, pg, "statement")
		opt := pglock.WithTransactionMode()
		open := newGroup(t, pgflight.Config{Locker: newLocker(t, newPool(t, b.URL()), opt), Logger: discard})
		closed := newGroup(t, pgflight.Config{Locker: newLocker(t, newPool(t, b.URL()), opt), FailClosed: true, Logger: discard})
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
		t.Logf("statement pooling, transaction mode: %v", err)
		noLocksLeft(t, obs)
		// Nor can it carry the default lock session.
		t.Run("session default refused", func(t *testing.T) {
			testSessionRefused(t, b, "statement", obs)
		})
	})
}

// testSessionRefused checks that the default lock session refuses to start
// through b, a PgBouncer in transaction (or statement) pooling, which would
// hand its session locks and its LISTEN to whichever client gets the server
// connection next: exclusion would silently break. First two Lockers, one
// after the other, try the same id (on a quiet pooler both get the same
// server connection, PgBouncer reusing the last one): both must be refused.
// Then several Groups start at once, as a fleet would, each with its own
// pool: fail-open ones compute without the lock, counted, FailClosed ones
// return ErrLockUnavailable saying to use WithTransactionMode, and no lock
// is left on the pooler's server connections. pglock's check is best
// effort, and a session starting among others on a busy machine can escape
// it: a known limit, measured (it fails with PGFLIGHT_KNOWN_BUGS=1).
//
// (pglock once compared pg_backend_pid() in two statements of the session,
// which differ only if PgBouncer lends them different server connections:
// on a quiet pooler both Lockers started, both held the one lock, and the
// locks stayed on the pooler's server connections after unlock. Found by
// this test; pglock now marks the server session and checks from a second
// connection.)
func testSessionRefused(t *testing.T, b *testserver.PgBouncer, mode string, obs *pgxpool.Pool) {
	ctx := context.Background()
	ns := namespace(t)

	// One after the other.
	id := pgflight.LockID(ns, "sequential")
	a, c := newLocker(t, newPool(t, b.URL())), newLocker(t, newPool(t, b.URL()))
	unlockA, errA := a.TryLock(ctx, id)
	unlockC, errC := c.TryLock(ctx, id)
	for _, r := range []struct {
		name   string
		unlock func(context.Context) error
		err    error
	}{{"first", unlockA, errA}, {"second", unlockC, errC}} {
		if r.err == nil || !strings.Contains(r.err.Error(), "WithTransactionMode") {
			t.Errorf("%s Locker's TryLock through %s pooling = (unlock %v, %v); want an error saying to use WithTransactionMode",
				r.name, mode, r.unlock != nil, r.err)
		}
	}
	if unlockA != nil && unlockC != nil {
		t.Errorf("two Lockers of two processes both hold the lock on id %d through %s pooling: PgBouncer gave both the same server connection, which re-granted it (exclusion broken)", id, mode)
	}
	for _, u := range []func(context.Context) error{unlockA, unlockC} {
		if u != nil {
			u(ctx)
		}
	}

	// A fleet starting at once.
	const procs = 4
	opens := make([]*pgflight.Group, procs)
	closeds := make([]*pgflight.Group, procs)
	var lockers []*pglock.Locker
	for i := range procs {
		lo, lc := newLocker(t, newPool(t, b.URL())), newLocker(t, newPool(t, b.URL()))
		lockers = append(lockers, lo, lc)
		opens[i] = newGroup(t, pgflight.Config{Namespace: ns, Locker: lo, Logger: discard})
		closeds[i] = newGroup(t, pgflight.Config{Namespace: ns, Locker: lc, FailClosed: true, Logger: discard})
	}
	openErrs := make([]error, procs)
	closedErrs := make([]error, procs)
	var computedClosed atomic.Int64
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i)
			v, err := pgflight.Fetch(ctx, opens[i], key, func(context.Context) (string, error) { return value(key), nil })
			if err == nil && v != value(key) {
				err = fmt.Errorf("value %q", v)
			}
			openErrs[i] = err
		}()
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("c%d", i)
			_, closedErrs[i] = pgflight.Fetch(ctx, closeds[i], key, func(context.Context) (string, error) {
				computedClosed.Add(1)
				return value(key), nil
			})
		}()
	}
	wg.Wait()
	var failOpens uint64
	refused := 0
	for i := range procs {
		if openErrs[i] != nil {
			t.Errorf("fail-open Group %d through %s pooling: %v, want the value", i, mode, openErrs[i])
		}
		failOpens += opens[i].Stats().FailOpens
		if err := closedErrs[i]; errors.Is(err, pgflight.ErrLockUnavailable) && strings.Contains(err.Error(), "WithTransactionMode") {
			refused++
		}
	}
	connected := 0
	for _, l := range lockers {
		if l.Stats().Connects > 0 {
			connected++
		}
	}
	t.Logf("%s pooling, %d processes starting at once: %d of %d fail-open flights counted as fail-opens, %d of %d FailClosed flights refused (%d computed), %d of %d lock sessions started; a refusal: %v",
		mode, procs, failOpens, procs, refused, procs, computedClosed.Load(), connected, len(lockers), closedErrs[0])
	// pglock's check is best effort (its doc says so): a busy pooler can
	// lend the check's statements the server sessions it expects.
	if failOpens != procs || refused != procs || connected != 0 {
		knownBug(t, "through %s pooling %d of %d lock sessions started, and %d of %d FailClosed flights computed; want every session refused",
			mode, connected, len(lockers), computedClosed.Load(), procs)
	}

	// Once every Locker has released what it held, no lock is left. A
	// session lock taken through the pooler stays with the server
	// connection it went to, which the pooler keeps, whatever server
	// connection the unlock went to.
	lockers = append(lockers, a, c)
	eventually(t, "every Locker has released its locks", func() bool {
		for _, l := range lockers {
			if l.Stats().Held != 0 {
				return false
			}
		}
		return true
	})
	if left := leftLocks(t, obs); len(left) > 0 {
		knownBug(t, "through %s pooling, after every Locker released its locks, advisory locks are left on the pooler's server connections (pid: lock ids) %v: held until PgBouncer closes those connections, so every process, in either mode, finds those keys locked",
			mode, left)
		for pid := range left { // so that the next subtests start clean
			if _, err := obs.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
		}
		noLocksLeft(t, obs)
	}
}

// leftLocks returns the advisory locks in pg_locks, by the pid of the
// server session that holds them.
func leftLocks(t *testing.T, obs *pgxpool.Pool) map[int32][]int64 {
	t.Helper()
	rows, err := obs.Query(context.Background(), "select pid, (classid::bigint << 32) | objid::bigint from pg_locks where locktype = 'advisory' and granted")
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32][]int64{}
	for rows.Next() {
		var pid int32
		var id int64
		if err := rows.Scan(&pid, &id); err != nil {
			t.Fatal(err)
		}
		left[pid] = append(left[pid], id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return left
}
