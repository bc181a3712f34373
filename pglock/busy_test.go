package pglock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight/pglock"
)

// A call over the cap takes the connection a release frees during its busy
// wait, and leaves when its ctx ends.
func TestBusyWait(t *testing.T) {
	pool := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithMaxConns(1), pglock.WithBusyWait(time.Hour), pglock.WithTransactionMode())
	first := mustLock(t, l, randomID())

	got := make(chan error, 1)
	go func() {
		unlock, err := l.Lock(context.Background(), randomID())
		if err == nil {
			err = unlock(context.Background())
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock over the cap returned %v before a connection came free", err)
	default:
	}
	mustUnlock(t, first)
	if err := <-got; err != nil {
		t.Fatalf("Lock over the cap after a release: %v", err)
	}

	held := mustLock(t, l, randomID())
	defer mustUnlock(t, held)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { got <- func() error { _, err := l.Lock(ctx, randomID()); return err }() }()
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("Lock over the cap with a cancelled ctx: err = %v, want context.Canceled", err)
	}
	none := pglock.New(pool, pglock.WithMaxConns(1), pglock.WithBusyWait(-1), pglock.WithTransactionMode())
	h := mustLock(t, none, randomID())
	defer mustUnlock(t, h)
	if _, err := none.Lock(context.Background(), randomID()); !errors.Is(err, pglock.ErrBusy) {
		t.Errorf("Lock over the cap without busy wait: err = %v, want ErrBusy", err)
	}
}

// Issue 8.7: a cap above the pool's size is lowered to it, so lock waits
// cannot queue the application's own queries behind them.
func TestMaxConnsClampedToPool(t *testing.T) {
	pool := newPool(t, 2, pgx.QueryExecModeCacheStatement)
	l := pglock.New(pool, pglock.WithMaxConns(10), pglock.WithBusyWait(-1), pglock.WithTransactionMode())
	a, b := mustLock(t, l, randomID()), mustLock(t, l, randomID())
	defer mustUnlock(t, a)
	defer mustUnlock(t, b)
	if _, err := l.Lock(context.Background(), randomID()); !errors.Is(err, pglock.ErrBusy) {
		t.Fatalf("third lock on a pool of 2 = %v, want ErrBusy", err)
	}
}
