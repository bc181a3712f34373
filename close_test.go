package pgflight_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// Issue 9.7: an fn that ignores its context cannot hold Close, or its
// callers: they get ErrClosed at once, and Shutdown bounds the wait.
func TestShutdownBoundsAnFnThatIgnoresItsContext(t *testing.T) {
	g, err := pgflight.New(pgflight.Config{Namespace: namespace(t), Cache: memstore.New()})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	res := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (int, error) {
			close(started)
			<-release // ignores its ctx
			return 1, nil
		})
		res <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with fn still running = %v, want a deadline error", err)
	}
	if err := <-res; !errors.Is(err, pgflight.ErrClosed) {
		t.Errorf("caller of the flight = %v, want ErrClosed", err)
	}
}

// A FetchMany in flight during Close is cancelled and waited for: it
// returns ErrClosed before Close returns, and stores nothing afterwards.
func TestCloseCancelsAndWaitsForFetchMany(t *testing.T) {
	cache := memstore.New()
	ns := namespace(t)
	g, err := pgflight.New(pgflight.Config{Namespace: ns, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		_, err := pgflight.FetchMany(context.Background(), g, []string{"a", "b"}, func(ctx context.Context, keys []string) (map[string]int, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		res <- err
	}()
	<-started
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, pgflight.ErrClosed) {
			t.Errorf("FetchMany during Close = %v, want ErrClosed", err)
		}
	default:
		t.Fatal("Close returned before the FetchMany in flight")
	}
	if _, ok, _ := cache.Get(context.Background(), ns+":a"); ok {
		t.Error("FetchMany stored a value after Close")
	}
}
