package pglock_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

var _ pgflight.Follower = (*pglock.Locker)(nil)

// patience bounds every wait for an observable state in these tests. It is a
// deadline for failing, never a delay for synchronising.
const patience = 10 * time.Second

var appSeq atomic.Int64

// newPool returns a pool of maxConns connections to the test database whose
// sessions carry an application_name of their own, closed when tb ends.
// Each tweak then adjusts the pool's config.
func newPool(tb testing.TB, maxConns int32, mode pgx.QueryExecMode, tweaks ...func(*pgxpool.Config)) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(testserver.PostgresURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.DefaultQueryExecMode = mode
	cfg.ConnConfig.RuntimeParams["application_name"] = fmt.Sprintf("pglock_test_%d", appSeq.Add(1))
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// newObserver returns a Locker on a pool of its own, used to read pg_locks
// with Held and to act as another process.
func newObserver(tb testing.TB) *pglock.Locker {
	tb.Helper()
	return pglock.New(newPool(tb, 3, pgx.QueryExecModeCacheStatement))
}

// randomID returns a lock id no other test uses.
func randomID() int64 {
	return rand.Int64()
}

// waitFor polls cond until it reports true, failing tb after patience.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("still waiting after %v for %s", patience, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// locksOn returns the advisory locks held or awaited on any of ids.
func locksOn(tb testing.TB, obs *pglock.Locker, ids ...int64) []pglock.Lock {
	tb.Helper()
	all, err := obs.Held(context.Background())
	if err != nil {
		tb.Fatalf("Held: %v", err)
	}
	var out []pglock.Lock
	for _, k := range all {
		if slices.Contains(ids, k.ID) {
			out = append(out, k)
		}
	}
	return out
}

// holderPID returns the PID of the session holding id exclusively.
func holderPID(tb testing.TB, obs *pglock.Locker, id int64) int32 {
	tb.Helper()
	for _, k := range locksOn(tb, obs, id) {
		if k.Granted && k.Mode == "ExclusiveLock" {
			return k.PID
		}
	}
	tb.Fatalf("no session holds lock %d", id)
	return 0
}

// waiters counts the sessions waiting for id in mode.
func waiters(tb testing.TB, obs *pglock.Locker, id int64, mode string) int {
	tb.Helper()
	n := 0
	for _, k := range locksOn(tb, obs, id) {
		if !k.Granted && k.Mode == mode {
			n++
		}
	}
	return n
}

// mustLock takes the lock on id or fails tb.
func mustLock(tb testing.TB, l *pglock.Locker, id int64) func(context.Context) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	unlock, err := l.Lock(ctx, id)
	if err != nil {
		tb.Fatalf("Lock(%d): %v", id, err)
	}
	return unlock
}

// mustUnlock calls unlock with a fresh context or fails tb.
func mustUnlock(tb testing.TB, unlock func(context.Context) error) {
	tb.Helper()
	if err := unlock(context.Background()); err != nil {
		tb.Fatalf("unlock: %v", err)
	}
}

// checkIdle fails tb unless l and pool use no connection and no idle
// connection of pool holds an advisory lock.
func checkIdle(tb testing.TB, l *pglock.Locker, pool *pgxpool.Pool, obs *pglock.Locker) {
	tb.Helper()
	if n := l.InUse(); n != 0 {
		tb.Errorf("InUse() = %d, want 0", n)
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		tb.Errorf("AcquiredConns() = %d, want 0", n)
	}
	conns := pool.AcquireAllIdle(context.Background())
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	var pids []int32
	for _, c := range conns {
		pids = append(pids, int32(c.Conn().PgConn().PID()))
	}
	all, err := obs.Held(context.Background())
	if err != nil {
		tb.Fatalf("Held: %v", err)
	}
	for _, k := range all {
		if slices.Contains(pids, k.PID) {
			tb.Errorf("idle pool connection (pid %d) has advisory lock %+v", k.PID, k)
		}
	}
}

func TestLockExcludes(t *testing.T) {
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithTransactionMode())
	id := randomID()

	unlock := mustLock(t, l, id)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if u, err := l.Lock(ctx, id); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			_ = u(context.Background())
		}
		t.Fatalf("second Lock while held: err = %v, want context.DeadlineExceeded", err)
	}
	if n := l.InUse(); n != 1 {
		t.Errorf("InUse() after the failed Lock = %d, want 1", n)
	}
	mustUnlock(t, unlock)

	ctx, cancel = context.WithTimeout(context.Background(), patience)
	defer cancel()
	unlock, err := l.Lock(ctx, id)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	mustUnlock(t, unlock)
	checkIdle(t, l, pool, newObserver(t))
}

func TestLockOrFollow(t *testing.T) {
	const followers = 20
	pool := newPool(t, followers+4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithMaxConns(followers+2), pglock.WithTransactionMode())
	obs := newObserver(t)
	id := randomID()

	unlock, err := l.LockOrFollow(context.Background(), id)
	if err != nil || unlock == nil {
		t.Fatalf("LockOrFollow on a free id = (%v, %v), want an unlock", unlock != nil, err)
	}
	holder := holderPID(t, obs, id)

	type result struct {
		held bool
		err  error
	}
	done := make(chan result, followers)
	for range followers {
		go func() {
			u, err := l.LockOrFollow(context.Background(), id)
			if u != nil {
				_ = u(context.Background())
			}
			done <- result{u != nil, err}
		}()
	}
	waitFor(t, fmt.Sprintf("%d shared waits on %d", followers, id), func() bool {
		return waiters(t, obs, id, "ShareLock") == followers
	})
	if n := len(done); n != 0 {
		t.Fatalf("%d followers returned while the lock was held, want 0", n)
	}
	for _, k := range locksOn(t, obs, id) {
		if k.Granted {
			continue
		}
		if !slices.Contains(k.BlockedBy, holder) {
			t.Errorf("waiter %d BlockedBy = %v, want it to contain holder %d", k.PID, k.BlockedBy, holder)
		}
		if k.WaitStart.IsZero() {
			t.Errorf("waiter %d WaitStart is zero", k.PID)
		}
		if want := pool.Config().ConnConfig.RuntimeParams["application_name"]; k.ApplicationName != want {
			t.Errorf("waiter %d ApplicationName = %q, want %q", k.PID, k.ApplicationName, want)
		}
	}

	mustUnlock(t, unlock)
	deadline := time.After(patience)
	for i := range followers {
		select {
		case r := <-done:
			if r.held || r.err != nil {
				t.Errorf("follower returned (held %v, %v), want (false, nil)", r.held, r.err)
			}
		case <-deadline:
			t.Fatalf("%d of %d followers returned after the unlock", i, followers)
		}
	}
	checkIdle(t, l, pool, obs)
}

func TestUnlockCancelledContext(t *testing.T) {
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithTransactionMode())
	id := randomID()
	other, err := pgx.Connect(context.Background(), testserver.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	try := func() bool {
		var got bool
		if err := other.QueryRow(context.Background(), "select pg_try_advisory_lock($1)", id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	unlock := mustLock(t, l, id)
	if try() {
		t.Fatal("another session's pg_try_advisory_lock = true while held, want false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := unlock(ctx); err == nil {
		t.Error("unlock with a cancelled ctx = nil, want an error saying the connection was closed")
	}
	waitFor(t, "another session to take the lock", try)
	if _, err := other.Exec(context.Background(), "select pg_advisory_unlock($1)", id); err != nil {
		t.Fatal(err)
	}
	checkIdle(t, l, pool, newObserver(t))
}

func TestUnlockTwice(t *testing.T) {
	pool := newPool(t, 1, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithTransactionMode())
	obs := newObserver(t)
	id := randomID()

	first := mustLock(t, l, id)
	mustUnlock(t, first)
	if err := first(context.Background()); err == nil {
		t.Error("second unlock = nil, want an error")
	}
	// With a one-connection pool the second lock reuses the first's
	// connection: a stray commit from the first unlock would release it.
	second := mustLock(t, l, id)
	if err := first(context.Background()); err == nil {
		t.Error("third unlock = nil, want an error")
	}
	if n := len(locksOn(t, obs, id)); n != 1 {
		t.Errorf("%d locks on id after a stale unlock, want 1 (the second holder)", n)
	}
	mustUnlock(t, second)
	checkIdle(t, l, pool, obs)
}

// cancelRequest makes a pool's connections answer a cancelled ctx with a
// cancel request, keeping the connection, instead of closing it (pgx's
// default).
func cancelRequest(cfg *pgxpool.Config) {
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: patience}
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	calls := []struct {
		name string
		mode string
		call func(*pglock.Locker, context.Context, int64) (func(context.Context) error, error)
	}{
		{"Lock", "ExclusiveLock", (*pglock.Locker).Lock},
		{"LockOrFollow", "ShareLock", (*pglock.Locker).LockOrFollow},
	}
	handlers := []struct {
		name  string
		tweak func(*pgxpool.Config)
	}{
		{"close", func(*pgxpool.Config) {}},
		{"cancel request", cancelRequest},
	}
	for _, tc := range calls {
		for _, h := range handlers {
			t.Run(tc.name+"/"+h.name, func(t *testing.T) {
				testCancelWhileWaiting(t, tc.mode, tc.call, h.tweak)
			})
		}
	}
}

func testCancelWhileWaiting(t *testing.T, mode string, call func(*pglock.Locker, context.Context, int64) (func(context.Context) error, error), tweak func(*pgxpool.Config)) {
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement, tweak)
	l := pglock.New(pool, pglock.WithTransactionMode())
	obs := newObserver(t)
	id := randomID()
	unlock := mustLock(t, l, id)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		u, err := call(l, ctx, id)
		if u != nil {
			_ = u(context.Background())
			err = errors.New("got the lock while it was held")
		}
		errc <- err
	}()
	var waiter int32
	waitFor(t, "the waiter to queue", func() bool {
		for _, k := range locksOn(t, obs, id) {
			if !k.Granted && k.Mode == mode {
				waiter = k.PID
				return true
			}
		}
		return false
	})
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled waiter: err = %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatal("cancelled waiter did not return")
	}
	waitFor(t, "the waiter's session to drop its wait", func() bool {
		all, err := obs.Held(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return !slices.ContainsFunc(all, func(k pglock.Lock) bool { return k.PID == waiter })
	})
	if n := l.InUse(); n != 1 {
		t.Errorf("InUse() with only the holder = %d, want 1", n)
	}
	mustUnlock(t, unlock)
	checkIdle(t, l, pool, obs)
}

func TestStorm(t *testing.T) {
	const (
		goroutines = 200
		rounds     = 10
		keys       = 10
	)
	pool := newPool(t, 24, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithMaxConns(20), pglock.WithTransactionMode())
	obs := newObserver(t)
	ids := make([]int64, keys)
	for i := range ids {
		ids[i] = randomID()
	}
	var holders [keys]atomic.Int32
	var held, followed, busy, ended atomic.Int64

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for done := 0; done < rounds; {
				k := r.IntN(keys)
				// Half the calls end by deadline, half by an explicit cancel,
				// both often while waiting.
				d := time.Duration(1+r.IntN(30)) * time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), d)
				if r.IntN(2) == 0 {
					ctx, cancel = context.WithCancel(context.Background())
					time.AfterFunc(d, cancel)
				}
				var unlock func(context.Context) error
				var err error
				if r.IntN(2) == 0 {
					unlock, err = l.Lock(ctx, ids[k])
				} else {
					unlock, err = l.LockOrFollow(ctx, ids[k])
				}
				cancel()
				if errors.Is(err, pglock.ErrBusy) {
					// Count it, and retry: a round is a call that reached
					// the server.
					busy.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				done++
				switch {
				case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
					ended.Add(1)
				case err != nil:
					t.Errorf("Lock or LockOrFollow: %v", err)
				case unlock == nil:
					followed.Add(1)
				default:
					held.Add(1)
					if n := holders[k].Add(1); n != 1 {
						t.Errorf("%d holders of id %d at once, want 1", n, ids[k])
					}
					time.Sleep(time.Duration(r.IntN(2)) * time.Millisecond) // the computation
					holders[k].Add(-1)
					uctx, ucancel := context.WithCancel(context.Background())
					if r.IntN(4) == 0 {
						ucancel()
					}
					if err := unlock(uctx); err != nil && uctx.Err() == nil {
						t.Errorf("unlock: %v", err)
					}
					ucancel()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("held %d, followed %d, busy %d, ended by ctx %d", held.Load(), followed.Load(), busy.Load(), ended.Load())
	if held.Load() == 0 {
		t.Error("no call took a lock")
	}
	waitFor(t, "no session to hold or await the storm's ids", func() bool {
		return len(locksOn(t, obs, ids...)) == 0
	})
	checkIdle(t, l, pool, obs)
}

func TestMaxConns(t *testing.T) {
	pool := newPool(t, 8, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithMaxConns(2), pglock.WithTransactionMode())
	obs := newObserver(t)
	id1, id2, id3 := randomID(), randomID(), randomID()

	u1 := mustLock(t, l, id1)
	u2 := mustLock(t, l, id2)
	if n := l.InUse(); n != 2 {
		t.Errorf("InUse() = %d, want 2", n)
	}
	// A ctx without deadline: a call that queued instead of failing would
	// hang until the test times out.
	if _, err := l.Lock(context.Background(), id3); !errors.Is(err, pglock.ErrBusy) {
		t.Errorf("Lock over the cap: err = %v, want ErrBusy", err)
	}
	if _, err := l.LockOrFollow(context.Background(), id3); !errors.Is(err, pglock.ErrBusy) {
		t.Errorf("LockOrFollow over the cap: err = %v, want ErrBusy", err)
	}
	if n := len(locksOn(t, obs, id3)); n != 0 {
		t.Errorf("%d locks on id3 after ErrBusy, want 0", n)
	}
	mustUnlock(t, u1)
	u3 := mustLock(t, l, id3)
	mustUnlock(t, u3)
	mustUnlock(t, u2)
	checkIdle(t, l, pool, obs)
}

func TestDefaultMaxConns(t *testing.T) {
	tests := []struct {
		name     string
		poolMax  int32
		wantCaps int
	}{
		{"at least 2", 3, 2},
		{"half the pool", 6, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t, tc.poolMax, pgx.QueryExecModeCacheStatement)
			l := pglock.New(pool, pglock.WithTransactionMode())
			var unlocks []func(context.Context) error
			for range tc.wantCaps {
				unlocks = append(unlocks, mustLock(t, l, randomID()))
			}
			if _, err := l.Lock(context.Background(), randomID()); !errors.Is(err, pglock.ErrBusy) {
				t.Errorf("Lock number %d: err = %v, want ErrBusy", tc.wantCaps+1, err)
			}
			for _, u := range unlocks {
				mustUnlock(t, u)
			}
		})
	}
}

func TestBackendTerminated(t *testing.T) {
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithTransactionMode())
	obs := newObserver(t)
	admin := newPool(t, 1, pgx.QueryExecModeCacheStatement)
	id := randomID()

	unlock := mustLock(t, l, id)
	pid := holderPID(t, obs, id)
	if _, err := admin.Exec(context.Background(), "select pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the terminated holder's lock to go", func() bool {
		return len(locksOn(t, obs, id)) == 0
	})
	if err := unlock(context.Background()); err == nil {
		t.Error("unlock after the backend was terminated = nil, want an error")
	}
	if n := l.InUse(); n != 0 {
		t.Errorf("InUse() = %d, want 0", n)
	}
	unlock = mustLock(t, l, id)
	mustUnlock(t, unlock)
	if err := pool.Ping(context.Background()); err != nil {
		t.Errorf("pool.Ping: %v", err)
	}
	checkIdle(t, l, pool, obs)
}

func TestExecModes(t *testing.T) {
	tests := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"default", pgx.QueryExecModeCacheStatement},
		{"cache_describe", pgx.QueryExecModeCacheDescribe},
		{"describe_exec", pgx.QueryExecModeDescribeExec},
		{"exec", pgx.QueryExecModeExec},
		{"simple_protocol", pgx.QueryExecModeSimpleProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t, 4, tc.mode)
			l := pglock.New(pool, pglock.WithTransactionMode())
			id := randomID()

			unlock := mustLock(t, l, id)
			done := make(chan error, 1)
			go func() {
				u, err := l.LockOrFollow(context.Background(), id)
				if u != nil {
					_ = u(context.Background())
					err = errors.New("LockOrFollow took a held lock")
				}
				done <- err
			}()
			waitFor(t, "the follower to wait", func() bool {
				return waiters(t, l, id, "ShareLock") == 1
			})
			mustUnlock(t, unlock)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("follower: %v", err)
				}
			case <-time.After(patience):
				t.Fatal("follower did not return after unlock")
			}
			unlock, err := l.LockOrFollow(context.Background(), id)
			if err != nil || unlock == nil {
				t.Fatalf("LockOrFollow on a free id = (%v, %v), want an unlock", unlock != nil, err)
			}
			mustUnlock(t, unlock)
			checkIdle(t, l, pool, newObserver(t))
		})
	}
}

func TestExtremeIDs(t *testing.T) {
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithTransactionMode())
	obs := newObserver(t)
	// Fixed ids other tests are unlikely to take, and a random negative one:
	// the literal must parse as a bigint, and Held must rebuild the id from
	// pg_locks' two unsigned halves.
	for _, id := range []int64{math.MinInt64, math.MaxInt64, -1 - randomID()} {
		t.Run(fmt.Sprint(id), func(t *testing.T) {
			unlock := mustLock(t, l, id)
			holderPID(t, obs, id) // fails unless Held lists id
			mustUnlock(t, unlock)
		})
	}
	checkIdle(t, l, pool, obs)
}
