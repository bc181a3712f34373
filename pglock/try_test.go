package pglock_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
)

var _ pgflight.TryLocker = (*pglock.Locker)(nil)

func TestTryLock(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithTransactionMode())
	obs := newObserver(t)
	id := randomID()

	unlock, err := l.TryLock(ctx, id)
	if err != nil || unlock == nil {
		t.Fatalf("TryLock on a free id = %v, %v; want an unlock", unlock != nil, err)
	}
	// held: a second try returns at once with nothing, and leaves no wait
	again, err := l.TryLock(ctx, id)
	if err != nil || again != nil {
		t.Fatalf("TryLock on a held id = %v, %v; want nil, nil", again != nil, err)
	}
	if n := len(locksOn(t, obs, id)); n != 1 {
		t.Errorf("locks on the id while held = %d, want 1 (the holder)", n)
	}
	if n := l.InUse(); n != 1 {
		t.Errorf("connections in use = %d, want 1", n)
	}
	mustUnlock(t, unlock)
	unlock, err = l.TryLock(ctx, id)
	if err != nil || unlock == nil {
		t.Fatalf("TryLock after unlock = %v, %v; want an unlock", unlock != nil, err)
	}
	mustUnlock(t, unlock)
	checkIdle(t, l, pool, obs)
}
