package pglock_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

// After a server restart the pool's idle connections are dead; the first
// lock after it must not fail on one of them.
func TestLockAfterRestart(t *testing.T) {
	pg, err := testserver.StartPostgres(testserver.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l := pglock.New(pool, pglock.WithTransactionMode())
	id := randomID()
	for _, mode := range []string{"fast", "immediate"} {
		mustUnlock(t, mustLock(t, l, id)) // leaves an idle connection in the pool
		if err := pg.Restart(mode); err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func(context.Context, int64) (func(context.Context) error, error){
			"Lock": l.Lock, "LockOrFollow": l.LockOrFollow, "TryLock": l.TryLock,
		} {
			unlock, err := call(ctx, id)
			if err != nil {
				t.Fatalf("%s after a %s restart: %v", name, mode, err)
			}
			mustUnlock(t, unlock)
			if err := pg.Restart(mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := l.InUse(); n != 0 {
		t.Errorf("InUse = %d, want 0", n)
	}
}
