package pgflight_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// Issue 10.2 in one process: the local tier serves hits without reading
// the shared Cache, a new value replaces the copy, and Delete drops it.
func TestLocalTier(t *testing.T) {
	mem := memstore.New()
	t.Cleanup(func() { mem.Close() })
	shared := &countingDeleter{countingCache{Cache: mem}, mem}
	local := memstore.New()
	t.Cleanup(func() { local.Close() })
	g := newGroup(t, pgflight.Config{Cache: shared, Local: local})
	ctx := context.Background()
	n := 0
	fn := func(context.Context) (int, error) { n++; return n, nil }
	for range 3 {
		if v, err := pgflight.Fetch(ctx, g, "k", fn); err != nil || v != 1 {
			t.Fatalf("Fetch = %d, %v; want 1", v, err)
		}
	}
	if s := g.Stats(); s.LocalHits != 2 || shared.gets.Load() != 2 {
		t.Errorf("local hits %d, shared reads %d; want 2 local hits and the miss's 2 reads", s.LocalHits, shared.gets.Load())
	}
	if v, _ := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithForceRefresh()); v != 2 {
		t.Fatalf("force refresh = %d, want 2", v)
	}
	if v, _ := pgflight.Fetch(ctx, g, "k", fn); v != 2 {
		t.Errorf("after a force refresh the local tier serves %d, want 2", v)
	}
	if err := g.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if local.Len() != 0 {
		t.Errorf("local tier holds %d entries after Delete, want 0", local.Len())
	}
	if v, _ := pgflight.Fetch(ctx, g, "k", fn); v != 3 {
		t.Errorf("after Delete Fetch = %d, want 3 (computed again)", v)
	}
}

// Config.Local refuses what cannot keep copies coherent.
func TestLocalTierConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  pgflight.Config
		want string
	}{
		{pgflight.Config{Local: plainCache{memstore.New()}}, "cannot delete"},
		{pgflight.Config{Local: memstore.New(), Locker: pgflight.LockerFunc(nil)}, "cannot broadcast"},
		{pgflight.Config{Local: memstore.New(), LocalTTL: -1}, "LocalTTL"},
	} {
		if _, err := pgflight.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
}

// plainCache hides every capability but Get and Set.
type plainCache struct{ c pgflight.Cache }

func (p plainCache) Get(ctx context.Context, k string) ([]byte, bool, error) { return p.c.Get(ctx, k) }
func (p plainCache) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return p.c.Set(ctx, k, v, ttl)
}

// countingDeleter is a countingCache that can delete.
type countingDeleter struct {
	countingCache
	d pgflight.Deleter
}

func (c *countingDeleter) Delete(ctx context.Context, k string) error { return c.d.Delete(ctx, k) }

// With pglock in transaction mode (no lock session, no broadcasts) Delete
// works and returns nil, and a local tier is refused at New.
func TestDeleteTransactionMode(t *testing.T) {
	l := pglock.New(newPool(t), pglock.WithTransactionMode())
	t.Cleanup(func() { l.Close() })
	g := newGroup(t, pgflight.Config{Cache: memstore.New(), Locker: l})
	ctx := context.Background()
	pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 1, nil })
	if err := g.Delete(ctx, "k"); err != nil {
		t.Errorf("Delete in transaction mode = %v, want nil", err)
	}
	if _, err := pgflight.New(pgflight.Config{Local: memstore.New(), Locker: l}); err == nil {
		t.Error("New with a local tier on a transaction-mode Locker = nil error, want one")
	}
}

// A value a Group received from another's computation, after waiting for
// it, is kept in its local tier like a hit's: its next Fetch is local.
func TestLocalTierKeepsReceivedValue(t *testing.T) {
	ctx := context.Background()
	locker := pglock.New(newPool(t))
	t.Cleanup(func() { locker.Close() })
	ns, rdb := namespace(t), newRedis(t)
	local := memstore.New()
	t.Cleanup(func() { local.Close() })
	holder := newGroup(t, pgflight.Config{Namespace: ns, Cache: redisstore.New(rdb), Locker: locker})
	waiter := newGroup(t, pgflight.Config{Namespace: ns, Cache: redisstore.New(rdb), Locker: locker, Local: local, LocalTTL: time.Hour})
	eventually(t, "the waiter's tier is live", func() bool { return waiter.Stats().LocalDrops > 0 })
	computing, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(ctx, holder, "k", func(context.Context) (string, error) {
			close(computing)
			<-release
			return "computed by the holder", nil
		})
		held <- err
	}()
	<-computing
	got := make(chan string, 1)
	go func() {
		v, _ := pgflight.Fetch(ctx, waiter, "k", func(context.Context) (string, error) { return "computed by the waiter", nil })
		got <- v
	}()
	eventually(t, "the waiter follows the holder", func() bool { return locker.Stats().Awaited > 0 })
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "computed by the holder" {
		t.Fatalf("waiter got %q", v)
	}
	if st := waiter.Stats(); st.Received != 1 {
		t.Fatalf("waiter Stats.Received = %d, want 1", st.Received)
	}
	if _, ok, _ := local.Get(ctx, "k"); !ok {
		t.Error("the received value is not in the waiter's local tier")
	}
	if v, _ := pgflight.Fetch(ctx, waiter, "k", func(context.Context) (string, error) { return "", nil }); v != "computed by the holder" || waiter.Stats().LocalHits != 1 {
		t.Errorf("next Fetch = %q with %d local hits, want a local hit", v, waiter.Stats().LocalHits)
	}
}
