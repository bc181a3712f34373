package pglock_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
)

var _ pgflight.BatchLocker = (*pglock.Locker)(nil)

func TestTryLockManyAndWaitMany(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithTransactionMode())
	other := pglock.New(newPool(t, 4, pgx.QueryExecModeCacheStatement), pglock.WithTransactionMode())
	obs := newObserver(t)
	ids := []int64{randomID(), randomID(), randomID()}
	slices.Sort(ids)

	busy := mustLock(t, other, ids[1])
	held, unlock, err := l.TryLockMany(ctx, ids)
	if err != nil || unlock == nil {
		t.Fatalf("TryLockMany = %v, %v", held, err)
	}
	if want := []bool{true, false, true}; !slices.Equal(held, want) {
		t.Errorf("held = %v, want %v", held, want)
	}
	if n := l.InUse(); n != 1 {
		t.Errorf("connections in use = %d, want 1 for the whole batch", n)
	}
	// Nothing free: no unlock, no connection kept.
	held2, unlock2, err := other.TryLockMany(ctx, ids[:1])
	if err != nil || unlock2 != nil || held2[0] {
		t.Fatalf("TryLockMany on held ids = %v, %v, %v", held2, unlock2 != nil, err)
	}
	// WaitMany returns only once every holder is done.
	done := make(chan error, 1)
	go func() { done <- other.WaitMany(ctx, ids) }()
	waitFor(t, "WaitMany queues", func() bool { return waiters(t, obs, ids[0], "ShareLock") == 1 })
	mustUnlock(t, unlock)
	waitFor(t, "WaitMany moves on to the next holder", func() bool { return waiters(t, obs, ids[1], "ShareLock") == 1 })
	select {
	case err := <-done:
		t.Fatalf("WaitMany returned %v while a lock was held", err)
	default:
	}
	mustUnlock(t, busy)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(locksOn(t, obs, ids...)); n != 0 {
		t.Errorf("locks left = %d, want 0", n)
	}
	checkIdle(t, l, pool, obs)
}

func TestTryLockManyCap(t *testing.T) {
	l := pglock.New(newPool(t, 4, pgx.QueryExecModeCacheStatement), pglock.WithTransactionMode())
	ids := make([]int64, pglock.MaxBatchLocks+10)
	for i := range ids {
		ids[i] = randomID()
	}
	slices.Sort(ids)
	held, unlock, err := l.TryLockMany(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	defer mustUnlock(t, unlock)
	n := 0
	for _, h := range held {
		if h {
			n++
		}
	}
	if n != pglock.MaxBatchLocks {
		t.Errorf("locks taken = %d, want the cap %d", n, pglock.MaxBatchLocks)
	}
}
