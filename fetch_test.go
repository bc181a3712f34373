package pgflight_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// Behaviour 1: a fresh hit costs one cache read and no lock.
func TestHitReadsCacheOnceAndTakesNoLock(t *testing.T) {
	cfg := fleetConfig(t)
	cache := &countingCache{Cache: cfg.Cache}
	locker := &countingLocker{Follower: cfg.Locker.(pgflight.Follower)}
	g := newGroup(t, pgflight.Config{Cache: cache, Locker: locker})
	ctx := context.Background()
	fn := func(context.Context) (string, error) { return "v", nil }

	if _, err := pgflight.Fetch(ctx, g, "k", fn); err != nil {
		t.Fatal(err)
	}
	gets, locks := cache.gets.Load(), locker.calls()
	got, err := pgflight.Fetch(ctx, g, "k", fn)
	if err != nil || got != "v" {
		t.Fatalf("Fetch = %q, %v; want \"v\", nil", got, err)
	}
	if n := cache.gets.Load() - gets; n != 1 {
		t.Errorf("cache reads on hit = %d, want 1", n)
	}
	if n := locker.calls() - locks; n != 0 {
		t.Errorf("lock calls on hit = %d, want 0", n)
	}
	if s := g.Stats(); s.Hits != 1 || s.Misses != 1 || s.Computations != 1 {
		t.Errorf("stats = %+v, want 1 hit, 1 miss, 1 computation", s)
	}
}

// Behaviour 2: concurrent callers in one process share one flight.
func TestCallersInOneProcessShareOneFlight(t *testing.T) {
	cfg := fleetConfig(t)
	cache := &countingCache{Cache: cfg.Cache}
	locker := &countingLocker{Follower: cfg.Locker.(pgflight.Follower)}
	g := newGroup(t, pgflight.Config{Cache: cache, Locker: locker})
	const n = 50
	var computed atomic.Int64
	release := make(chan struct{})
	fn := func(context.Context) (int, error) {
		computed.Add(1)
		<-release
		return 42, nil
	}
	go func() {
		eventually(t, "all callers joined", func() bool { return g.Stats().Coalesced == n-1 })
		close(release)
	}()
	run(n, func(int) {
		v, err := pgflight.Fetch(context.Background(), g, "k", fn)
		if err != nil || v != 42 {
			t.Errorf("Fetch = %d, %v; want 42, nil", v, err)
		}
	})
	if c := computed.Load(); c != 1 {
		t.Errorf("computations = %d, want 1", c)
	}
	// one read before the lock, one re-check under it
	if r := cache.gets.Load(); r != 2 {
		t.Errorf("cache reads = %d, want 2", r)
	}
	if l := locker.calls(); l != 1 {
		t.Errorf("lock calls = %d, want 1", l)
	}
}

// Behaviour 3 in one process: two Groups sharing Redis and PostgreSQL
// behave like two processes. multiproc_test.go does it with processes.
func TestGroupsSharingALockerComputeOnce(t *testing.T) {
	ns := namespace(t)
	bLocker := fleetConfig(t).Locker
	a := newGroup(t, pgflight.Config{Namespace: ns, Cache: fleetConfig(t).Cache, Locker: fleetConfig(t).Locker})
	b := newGroup(t, pgflight.Config{Namespace: ns, Cache: fleetConfig(t).Cache, Locker: bLocker})
	var computed atomic.Int64
	started := make(chan struct{})
	release := make(chan struct{})
	unblock := closer(t, release) // a failed check below must fail the test, not hang it
	fn := func(context.Context) (string, error) {
		if computed.Add(1) == 1 {
			close(started)
		}
		<-release
		return "once", nil
	}
	errs := make(chan error, 2)
	go func() { _, err := pgflight.Fetch(context.Background(), a, "k", fn); errs <- err }()
	<-started
	go func() {
		v, err := pgflight.Fetch(context.Background(), b, "k", fn)
		if err == nil && v != "once" {
			err = fmt.Errorf("b got %q", v)
		}
		errs <- err
	}()
	eventually(t, "b waits for a's lock", func() bool { return awaited(bLocker) == 1 })
	unblock()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if c := computed.Load(); c != 1 {
		t.Errorf("computations = %d, want 1", c)
	}
	if r := b.Stats().Received; r != 1 {
		t.Errorf("b received = %d, want 1", r)
	}
}

// Behaviour 4: after the lock is granted the cache is read again.
func TestDoubleCheckAfterLockGrant(t *testing.T) {
	ns := namespace(t)
	cfg := fleetConfig(t)
	pool := newPool(t)
	unlock := holdLock(t, pool, ns, "k")
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: lockOnly{cfg.Locker}})
	done := make(chan error, 1)
	var computed atomic.Int64
	go func() {
		v, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (string, error) {
			computed.Add(1)
			return "mine", nil
		})
		if err == nil && v != "theirs" {
			err = fmt.Errorf("got %q, want the value stored meanwhile", v)
		}
		done <- err
	}()
	eventually(t, "the flight queues for the lock", func() bool { return awaited(cfg.Locker) == 1 })
	// Someone else stores the value while our flight waits.
	other := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache})
	if _, err := pgflight.Fetch(context.Background(), other, "k", func(context.Context) (string, error) { return "theirs", nil }); err != nil {
		t.Fatal(err)
	}
	unlock(context.Background())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := computed.Load(); c != 0 {
		t.Errorf("computations = %d, want 0", c)
	}
}

// Behaviour 5: the holder stores the value before it releases the lock.
func TestStoreThenRelease(t *testing.T) {
	cfg := fleetConfig(t)
	ns := namespace(t)
	storedAtRelease := make(chan bool, 1)
	locker := &countingLocker{Follower: cfg.Locker.(pgflight.Follower)}
	locker.beforeUnlock = func() {
		b, ok, err := cfg.Cache.Get(context.Background(), ns+":k")
		storedAtRelease <- err == nil && ok && len(b) > 0
	}
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: locker})
	if _, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	// The release may come after Fetch returns: callers get the value
	// first.
	if !<-storedAtRelease {
		t.Error("value not in the cache when the lock was released")
	}
}

// Behaviour 6: force refresh recomputes, stores, and coalesces.
func TestForceRefresh(t *testing.T) {
	g := newGroup(t, fleetConfig(t))
	ctx := context.Background()
	var computed atomic.Int64
	release := make(chan struct{})
	fn := func(context.Context) (int64, error) {
		n := computed.Add(1)
		if n > 1 {
			<-release
		}
		return n, nil
	}
	if v, _ := pgflight.Fetch(ctx, g, "k", fn); v != 1 {
		t.Fatalf("first Fetch = %d, want 1", v)
	}
	go func() {
		eventually(t, "force refreshers joined", func() bool { return g.Stats().Coalesced == 9 })
		close(release)
	}()
	run(10, func(int) {
		v, err := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithForceRefresh())
		if err != nil || v != 2 {
			t.Errorf("forced Fetch = %d, %v; want 2, nil", v, err)
		}
	})
	if v, _ := pgflight.Fetch(ctx, g, "k", fn); v != 2 {
		t.Errorf("Fetch after refresh = %d, want 2", v)
	}
	if c := computed.Load(); c != 2 {
		t.Errorf("computations = %d, want 2", c)
	}
}

// Behaviour 7: errors go to every caller, are not cached, and a waiter in
// another process computes itself after the holder failed.
func TestErrorsAreNotCached(t *testing.T) {
	ns := namespace(t)
	cfg := fleetConfig(t)
	a := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: cfg.Locker})
	bLocker := pglock.New(newPool(t))
	b := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: bLocker})
	started := make(chan struct{})
	release := make(chan struct{})
	unblock := closer(t, release) // a failed check below must fail the test, not hang it
	aErr := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(context.Background(), a, "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "", errBoom
		})
		aErr <- err
	}()
	<-started
	bDone := make(chan string, 1)
	go func() {
		v, err := pgflight.Fetch(context.Background(), b, "k", func(context.Context) (string, error) { return "b", nil })
		if err != nil {
			v = err.Error()
		}
		bDone <- v
	}()
	eventually(t, "b follows a", func() bool { return awaited(bLocker) == 1 })
	unblock()
	if err := <-aErr; !errors.Is(err, errBoom) {
		t.Errorf("a's error = %v, want %v", err, errBoom)
	}
	if v := <-bDone; v != "b" {
		t.Errorf("b = %q, want its own value", v)
	}
	if s := b.Stats(); s.Computations != 1 || s.Received != 0 {
		t.Errorf("b stats = %+v, want 1 computation, 0 received", s)
	}
	// a's error was not cached: a computes again and finds b's value
	if v, err := pgflight.Fetch(context.Background(), a, "k", func(context.Context) (string, error) { return "a2", nil }); v != "b" || err != nil {
		t.Errorf("a after failure = %q, %v; want \"b\", nil", v, err)
	}
}

// Behaviour 7 in one process: one error reaches every caller of the flight.
func TestErrorReachesEveryCaller(t *testing.T) {
	g := newGroup(t, pgflight.Config{})
	release := make(chan struct{})
	go func() {
		eventually(t, "callers joined", func() bool { return g.Stats().Coalesced == 4 })
		close(release)
	}()
	run(5, func(int) {
		_, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (int, error) {
			<-release
			return 0, errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("err = %v, want %v", err, errBoom)
		}
	})
	if c := g.Stats().Computations; c != 1 {
		t.Errorf("computations = %d, want 1", c)
	}
}

// Behaviour 8: panics and Goexit release the lock and reach every caller.
func TestPanicAndGoexit(t *testing.T) {
	cfg := fleetConfig(t)
	cfg.Namespace = namespace(t)
	pool := newPool(t)
	g := newGroup(t, cfg)
	ctx := context.Background()

	_, err := pgflight.Fetch(ctx, g, "panic", func(context.Context) (int, error) { panic("kaboom") })
	var pe *pgflight.PanicError
	if !errors.As(err, &pe) || pe.Value != "kaboom" || !strings.Contains(string(pe.Stack), "fetch_test.go") {
		t.Fatalf("err = %v, want a *PanicError with value and stack", err)
	}
	_, err = pgflight.Fetch(ctx, g, "panic-err", func(context.Context) (int, error) { panic(errBoom) })
	if !errors.Is(err, errBoom) {
		t.Errorf("panic(errBoom): errors.Is = false for %v", err)
	}
	_, err = pgflight.Fetch(ctx, g, "goexit", func(context.Context) (int, error) {
		runtime.Goexit()
		return 0, nil
	})
	if !errors.Is(err, pgflight.ErrGoexit) {
		t.Errorf("Goexit: err = %v, want ErrGoexit", err)
	}
	for _, k := range []string{"panic", "panic-err", "goexit"} {
		// Read back the key as stored: namespace, ':', key (issue 9.17:
		// reading the bare key could never find anything).
		if _, ok, err := cfg.Cache.Get(ctx, cfg.Namespace+":"+k); ok || err != nil {
			t.Errorf("%s: something was stored (%v)", k, err)
		}
	}
	eventually(t, "no advisory lock is left", func() bool { return advisoryLocks(t, pool) == 0 })
	// the key is not poisoned
	if v, err := pgflight.Fetch(ctx, g, "panic", func(context.Context) (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Errorf("after panic: %d, %v; want 7, nil", v, err)
	}
	if _, ok, _ := cfg.Cache.Get(ctx, cfg.Namespace+":panic"); !ok {
		t.Error("the value stored after the panic is not under the key this test reads: its checks above prove nothing")
	}
	if p := g.Stats().Panics; p != 3 {
		t.Errorf("panics = %d, want 3", p)
	}
}

type ctxKey struct{}

// Behaviour 9: a caller leaves when its ctx ends; the computation keeps the
// first caller's values, survives it, and is cancelled when all have gone.
func TestCancellation(t *testing.T) {
	g := newGroup(t, fleetConfig(t))
	fnCtx := make(chan context.Context, 1)
	fn := func(ctx context.Context) (int, error) {
		fnCtx <- ctx
		<-ctx.Done()
		return 0, ctx.Err()
	}
	ctx1, cancel1 := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "first"))
	ctx2, cancel2 := context.WithCancel(context.Background())
	res1 := make(chan error, 1)
	res2 := make(chan error, 1)
	go func() { _, err := pgflight.Fetch(ctx1, g, "k", fn); res1 <- err }()
	c := <-fnCtx
	go func() { _, err := pgflight.Fetch(ctx2, g, "k", fn); res2 <- err }()
	eventually(t, "second caller joined", func() bool { return g.Stats().Coalesced == 1 })
	if v := c.Value(ctxKey{}); v != "first" {
		t.Errorf("fn ctx value = %v, want the first caller's", v)
	}
	cancel1()
	if err := <-res1; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller err = %v, want context.Canceled", err)
	}
	if c.Err() != nil {
		t.Fatal("fn ctx cancelled while a caller still waits")
	}
	cancel2()
	if err := <-res2; !errors.Is(err, context.Canceled) {
		t.Errorf("second caller err = %v, want context.Canceled", err)
	}
	<-c.Done() // the last caller left: fn is cancelled
	// a newcomer starts a fresh flight instead of inheriting the cancelled one
	v, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (int, error) { return 5, nil })
	if v != 5 || err != nil {
		t.Errorf("newcomer = %d, %v; want 5, nil", v, err)
	}
}

// Behaviour 9: a caller waiting for another process's computation leaves
// when its ctx ends, and leaves no lock or wait behind.
func TestCancelWhileWaitingForAnotherProcess(t *testing.T) {
	ns := namespace(t)
	pool := newPool(t)
	defer holdLock(t, pool, ns, "k")(context.Background())
	cfg := fleetConfig(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: cfg.Locker})
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 1, nil })
		res <- err
	}()
	eventually(t, "the flight waits", func() bool { return awaited(cfg.Locker) == 1 })
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	eventually(t, "the wait is withdrawn", func() bool { return awaited(cfg.Locker) == 0 && advisoryLocks(t, pool) == 1 })
}

// Behaviour 10 and 11: LockWait bounds the wait; then fail open, or fail
// closed with ErrLockUnavailable.
func TestLockWait(t *testing.T) {
	ns := namespace(t)
	pool := newPool(t)
	defer holdLock(t, pool, ns, "k")(context.Background())
	cfg := fleetConfig(t)
	open := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: cfg.Locker, LockWait: 50 * time.Millisecond})
	v, err := pgflight.Fetch(context.Background(), open, "k", func(context.Context) (int, error) { return 3, nil })
	if v != 3 || err != nil {
		t.Errorf("fail open: %d, %v; want 3, nil", v, err)
	}
	if s := open.Stats(); s.LockTimeouts != 1 || s.FailOpens != 1 {
		t.Errorf("stats = %+v, want 1 lock timeout, 1 fail-open", s)
	}
	closed := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: cfg.Locker, LockWait: 50 * time.Millisecond, FailClosed: true})
	_, err = pgflight.Fetch(context.Background(), closed, "k", func(context.Context) (int, error) { return 4, nil }, pgflight.WithForceRefresh())
	if !errors.Is(err, pgflight.ErrLockUnavailable) {
		t.Errorf("fail closed: err = %v, want ErrLockUnavailable", err)
	}
}

// Behaviour 11: a dead lock server or cache does not fail the call.
func TestDeadServers(t *testing.T) {
	deadPool := deadPool(t)
	deadRedis := deadRedis(t)
	g := newGroup(t, pgflight.Config{Cache: redisstore.New(deadRedis), Locker: pglock.New(deadPool)})
	v, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (string, error) { return "ok", nil })
	if v != "ok" || err != nil {
		t.Fatalf("Fetch = %q, %v; want \"ok\", nil", v, err)
	}
	if s := g.Stats(); s.FailOpens != 1 || s.CacheErrors != 2 || s.Computations != 1 {
		t.Errorf("stats = %+v, want 1 fail-open, 2 cache errors, 1 computation", s)
	}
	fc := newGroup(t, pgflight.Config{Cache: memstore.New(), Locker: pglock.New(deadPool), FailClosed: true})
	_, err = pgflight.Fetch(context.Background(), fc, "k", func(context.Context) (string, error) { return "ok", nil })
	if !errors.Is(err, pgflight.ErrLockUnavailable) {
		t.Errorf("FailClosed: err = %v, want ErrLockUnavailable", err)
	}
}

// Behaviour 13: keys.
func TestKeys(t *testing.T) {
	g := newGroup(t, fleetConfig(t))
	ctx := context.Background()
	_, err := pgflight.Fetch(ctx, g, "", func(context.Context) (int, error) { return 1, nil })
	if !errors.Is(err, pgflight.ErrInvalidKey) {
		t.Errorf("empty key: err = %v, want ErrInvalidKey", err)
	}
	if err := g.Delete(ctx, ""); !errors.Is(err, pgflight.ErrInvalidKey) {
		t.Errorf("Delete empty key: err = %v, want ErrInvalidKey", err)
	}
	keys := []string{"a", "a:b", "a\x00b", "with space", "line\nbreak", "ключ", strings.Repeat("x", 10<<10), "\xff\xfe"}
	for i, k := range keys {
		if _, err := pgflight.Fetch(ctx, g, k, func(context.Context) (int, error) { return i, nil }); err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
	}
	for i, k := range keys {
		v, err := pgflight.Fetch(ctx, g, k, func(context.Context) (int, error) { return -1, nil })
		if v != i || err != nil {
			t.Errorf("key %.20q = %d, %v; want %d", k, v, err, i)
		}
	}
}

func TestLockIDIsStable(t *testing.T) {
	// Every process of every release must derive the same ids: changing
	// these values splits a fleet that upgrades one process at a time.
	cases := []struct {
		ns, key string
		want    int64
	}{
		{"", "user:42", 2826779323981670831},
		{"pgflight", "user:42", 2826779323981670831},
		{"reports", "report:2026-q3", -2668340797943463154},
	}
	for _, tc := range cases {
		if got := pgflight.LockID(tc.ns, tc.key); got != tc.want {
			t.Errorf("LockID(%q, %q) = %d, want %d", tc.ns, tc.key, got, tc.want)
		}
	}
	if pgflight.LockID("a:b", "c") == pgflight.LockID("a", "b:c") {
		t.Error("namespace and key boundary is ambiguous")
	}
}

// Behaviour 13: a lock id collision serialises two keys, never mixes them.
func TestLockIDCollision(t *testing.T) {
	g := newGroup(t, fleetConfig(t))
	pgflight.SetLockIDFunc(g, func(string, string) int64 { return 4242 })
	run(20, func(i int) {
		k := fmt.Sprintf("k%d", i%2)
		v, err := pgflight.Fetch(context.Background(), g, k, func(context.Context) (string, error) { return k, nil })
		if v != k || err != nil {
			t.Errorf("Fetch(%s) = %q, %v", k, v, err)
		}
	})
}

// holdLock takes the lock of key in ns from a session of pool's, as another
// process would, and returns its unlock.
func holdLock(tb testing.TB, pool *pgxpool.Pool, ns, key string) func(context.Context) error {
	tb.Helper()
	unlock, err := pglock.New(pool).Lock(context.Background(), pgflight.LockID(ns, key))
	if err != nil {
		tb.Fatal(err)
	}
	return unlock
}
