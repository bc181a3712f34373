package pglock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight/pglock"
)

// newSessionLocker returns a Locker in the default (session) mode on a pool
// of its own, closed when tb ends. Each stands for one process.
func newSessionLocker(tb testing.TB, opts ...pglock.Option) *pglock.Locker {
	tb.Helper()
	l := pglock.New(newPool(tb, 4, pgx.QueryExecModeCacheStatement), opts...)
	tb.Cleanup(func() { l.Close() })
	return l
}

// terminate ends the PostgreSQL session with pid, as an operator's
// pg_terminate_backend would.
func terminate(tb testing.TB, pid int32) {
	tb.Helper()
	pool := newPool(tb, 1, pgx.QueryExecModeSimpleProtocol)
	if _, err := pool.Exec(context.Background(), "select pg_terminate_backend($1)", pid); err != nil {
		tb.Fatal(err)
	}
}

// result is what a goroutine's lock call returned.
type result struct {
	unlock func(context.Context) error
	err    error
}

func TestSessionExcludesAcrossLockers(t *testing.T) {
	// b's probe waits an hour, so only the release's notification can wake
	// its follower (a probe every 5 ms could beat it on a loaded machine).
	a, b := newSessionLocker(t), newSessionLocker(t, pglock.WithProbeInterval(time.Hour))
	id := randomID()
	unlock := mustLock(t, a, id)

	if u, err := b.TryLock(context.Background(), id); u != nil || err != nil {
		t.Fatalf("TryLock of a held id = (%v, %v), want (false, nil)", u != nil, err)
	}
	done := make(chan result, 1)
	go func() {
		u, err := b.LockOrFollow(context.Background(), id)
		done <- result{u, err}
	}()
	waitFor(t, "the follower to register", func() bool { return b.Stats().Awaited == 1 })
	select {
	case r := <-done:
		t.Fatalf("follower returned (%v, %v) while the lock was held", r.unlock != nil, r.err)
	default:
	}
	mustUnlock(t, unlock)
	r := <-done
	if r.unlock != nil || r.err != nil {
		t.Fatalf("follower = (%v, %v), want (nil, nil) after the release", r.unlock != nil, r.err)
	}
	if n := b.Stats().Notifications; n == 0 {
		t.Errorf("follower's session received %d notifications, want the release's", n)
	}
}

// The point of the session: one connection carries every lock of the
// process, whatever the number in flight, and none comes from the pool.
func TestSessionOneConnectionForManyLocks(t *testing.T) {
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool)
	t.Cleanup(func() { l.Close() })
	obs := newObserver(t)
	const n = 200 // within the default WithMaxLocks
	ids := make([]int64, n)
	unlocks := make([]func(context.Context) error, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		ids[i] = randomID()
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := l.LockOrFollow(context.Background(), ids[i])
			if err == nil && u == nil {
				err = fmt.Errorf("id %d: not taken", ids[i])
			}
			unlocks[i] = u
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pids := map[int32]bool{}
	var app string
	for _, k := range locksOn(t, obs, ids...) {
		pids[k.PID] = true
		app = k.ApplicationName
	}
	if len(pids) != 1 {
		t.Errorf("%d locks held by %d sessions, want 1", n, len(pids))
	}
	if !strings.HasSuffix(app, "pgflight-lock") {
		t.Errorf("lock session application_name = %q, want it to end in pgflight-lock", app)
	}
	if got := pool.Stat().AcquiredConns(); got != 0 {
		t.Errorf("pool connections acquired = %d, want 0", got)
	}
	st := l.Stats()
	if st.Held != n || st.Connects != 1 {
		t.Errorf("Stats Held = %d, Connects = %d; want %d, 1", st.Held, st.Connects, n)
	}
	if st.RoundTrips >= st.Ops {
		t.Errorf("%d operations in %d round trips, want several per round trip under load", st.Ops, st.RoundTrips)
	}
	for _, u := range unlocks {
		mustUnlock(t, u)
	}
	if got := locksOn(t, obs, ids...); len(got) != 0 {
		t.Errorf("%d locks left after every unlock", len(got))
	}
}

// One session is one PostgreSQL owner, which would grant a lock again to
// itself: callers of one Locker must still exclude each other.
func TestSessionExcludesWithinProcess(t *testing.T) {
	l := newSessionLocker(t)
	id := randomID()
	unlock := mustLock(t, l, id)
	if u, err := l.TryLock(context.Background(), id); u != nil || err != nil {
		t.Fatalf("TryLock by the same Locker = (%v, %v), want (false, nil)", u != nil, err)
	}
	done := make(chan result, 1)
	go func() {
		u, err := l.Lock(context.Background(), id)
		done <- result{u, err}
	}()
	waitFor(t, "the second caller to wait", func() bool { return l.Stats().Awaited == 1 })
	mustUnlock(t, unlock)
	r := <-done
	if r.err != nil || r.unlock == nil {
		t.Fatalf("Lock after the release = (%v, %v), want the lock", r.unlock != nil, r.err)
	}
	mustUnlock(t, r.unlock)
}

// A holder whose session dies notifies nobody: the probe wakes its
// followers, and the holder's unlock reports the loss.
func TestSessionProbeWakesOnDeadHolder(t *testing.T) {
	holder, follower := newSessionLocker(t), newSessionLocker(t)
	obs := newObserver(t)
	id := randomID()
	unlock := mustLock(t, holder, id)
	done := make(chan result, 1)
	go func() {
		u, err := follower.LockOrFollow(context.Background(), id)
		done <- result{u, err}
	}()
	waitFor(t, "the follower to register", func() bool { return follower.Stats().Awaited == 1 })
	terminate(t, holderPID(t, obs, id))
	r := <-done
	if r.err != nil {
		t.Fatalf("follower: %v", r.err)
	}
	if r.unlock != nil {
		mustUnlock(t, r.unlock)
	}
	if st := follower.Stats(); st.ProbeWakes == 0 {
		t.Errorf("ProbeWakes = 0, want the probe to have woken the follower (stats %+v)", st)
	}
	if err := unlock(context.Background()); !errors.Is(err, pglock.ErrSessionLost) {
		t.Errorf("unlock after the session died = %v, want ErrSessionLost", err)
	}
	// The holder's Locker reconnects.
	again := mustLock(t, holder, randomID())
	mustUnlock(t, again)
	if st := holder.Stats(); st.Connects < 2 || st.SessionLosses < 1 || st.LocksLost != 1 {
		t.Errorf("holder stats %+v: want a loss, a reconnect and one lost lock", st)
	}
}

// Nothing is cancelled on the wire: a caller that leaves stops waiting, and
// a lock granted after it left is released.
func TestSessionCancelLeavesNothing(t *testing.T) {
	holder, l := newSessionLocker(t), newSessionLocker(t)
	obs := newObserver(t)
	ids := make([]int64, 50)
	for i := range ids {
		ids[i] = randomID()
	}
	held := mustLock(t, holder, ids[0])
	var wg sync.WaitGroup
	errs := make(chan error, len(ids)*2)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Deadlines from zero upwards: some leave before the answer,
			// some after it, some while following ids[0].
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*50*time.Microsecond)
			defer cancel()
			u, err := l.LockOrFollow(ctx, id)
			if u != nil {
				errs <- u(context.Background())
			} else if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs <- fmt.Errorf("id %d: %v, want a deadline error", i, err)
			}
		}()
	}
	wg.Wait()
	mustUnlock(t, held)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	waitFor(t, "every lock granted to a caller that left to be released", func() bool {
		return len(locksOn(t, obs, ids...)) == 0 && l.Stats().Held == 0
	})
	if st := l.Stats(); st.Awaited != 0 {
		t.Errorf("Awaited = %d after every caller left, want 0", st.Awaited)
	}
}

// Past WithMaxLocks a lock waits for a slot within its ctx, and gets one
// when a lock is released.
func TestSessionMaxLocks(t *testing.T) {
	l := newSessionLocker(t, pglock.WithMaxLocks(2))
	a, b := mustLock(t, l, randomID()), mustLock(t, l, randomID())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if u, err := l.Lock(ctx, randomID()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past the cap = (%v, %v), want a deadline error", u != nil, err)
	}
	done := make(chan result, 1)
	go func() {
		u, err := l.Lock(context.Background(), randomID())
		done <- result{u, err}
	}()
	mustUnlock(t, a)
	r := <-done
	if r.err != nil || r.unlock == nil {
		t.Fatalf("Lock after a release = (%v, %v), want the lock", r.unlock != nil, r.err)
	}
	mustUnlock(t, r.unlock)
	mustUnlock(t, b)
}

func TestSessionTryLockManyAndWaitMany(t *testing.T) {
	l, other := newSessionLocker(t), newSessionLocker(t)
	ids := []int64{randomID(), randomID(), randomID()}
	u1 := mustLock(t, other, ids[1])
	held, unlock, err := l.TryLockMany(context.Background(), ids)
	if err != nil || unlock == nil {
		t.Fatalf("TryLockMany = %v, %v", unlock != nil, err)
	}
	if !held[0] || held[1] || !held[2] {
		t.Errorf("held = %v, want [true false true]", held)
	}
	mustUnlock(t, unlock)

	done := make(chan error, 1)
	go func() { done <- l.WaitMany(context.Background(), ids) }()
	waitFor(t, "WaitMany to await the held id", func() bool { return l.Stats().Awaited == 1 })
	select {
	case err := <-done:
		t.Fatalf("WaitMany returned %v while an id was held", err)
	default:
	}
	mustUnlock(t, u1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := locksOn(t, newObserver(t), ids...); len(got) != 0 {
		t.Errorf("WaitMany left locks %+v", got)
	}
}

func TestSessionClose(t *testing.T) {
	l := pglock.New(newPool(t, 2, pgx.QueryExecModeCacheStatement))
	obs := newObserver(t)
	id := randomID()
	unlock := mustLock(t, l, id)
	l.Close()
	if got := locksOn(t, obs, id); len(got) != 0 {
		t.Errorf("locks after Close: %+v", got)
	}
	if _, err := l.Lock(context.Background(), randomID()); err == nil {
		t.Error("Lock after Close succeeded")
	}
	_ = unlock(context.Background()) // the lock went with the session
}
