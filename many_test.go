package pgflight_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// square is a batch fn that returns k² for numeric keys "n" it knows, and
// records what it was asked.
type square struct {
	asked [][]string
	skip  map[string]bool // keys it does not return
}

func (s *square) fn(_ context.Context, missing []string) (map[string]int, error) {
	s.asked = append(s.asked, slices.Clone(missing))
	out := map[string]int{}
	for _, k := range missing {
		if !s.skip[k] {
			var n int
			fmt.Sscan(k, &n)
			out[k] = n * n
		}
	}
	return out, nil
}

func testFetchMany(t *testing.T, cfg pgflight.Config) {
	g := newGroup(t, cfg)
	ctx := context.Background()
	sq := &square{skip: map[string]bool{"13": true}}
	pgflight.Fetch(ctx, g, "2", func(context.Context) (int, error) { return 4, nil })

	got, err := pgflight.FetchMany(ctx, g, []string{"1", "2", "3", "3", "13"}, sq.fn)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"1": 1, "2": 4, "3": 9}; !equalMaps(got, want) {
		t.Errorf("FetchMany = %v, want %v", got, want)
	}
	if len(sq.asked) != 1 || !sameKeys(sq.asked[0], []string{"1", "3", "13"}) {
		t.Errorf("fn asked %v, want one call for [1 3 13]", sq.asked)
	}
	// Everything is cached now, "13" as missing.
	got, err = pgflight.FetchMany(ctx, g, []string{"1", "2", "3", "13"}, sq.fn)
	if err != nil || len(got) != 3 || len(sq.asked) != 1 {
		t.Errorf("second FetchMany = %v, %v; fn asked %v; want 3 values and no new call", got, err, sq.asked)
	}
	_, err = pgflight.Fetch(ctx, g, "13", func(context.Context) (int, error) { return -1, nil })
	if !errors.Is(err, pgflight.ErrMissing) {
		t.Errorf("Fetch of a key the batch did not return: err = %v, want ErrMissing", err)
	}
	if s := g.Stats(); s.Computations != 2 {
		t.Errorf("computations = %d, want 2 (one Fetch, one batch)", s.Computations)
	}
}

func TestFetchMany(t *testing.T) {
	t.Run("default", func(t *testing.T) { testFetchMany(t, pgflight.Config{}) })
	t.Run("redis+pglock", func(t *testing.T) { testFetchMany(t, fleetConfig(t)) })
	t.Run("plain locker", func(t *testing.T) {
		cfg := fleetConfig(t)
		cfg.Locker = lockOnly{cfg.Locker}
		testFetchMany(t, cfg)
	})
}

func TestFetchManyErrors(t *testing.T) {
	g := newGroup(t, fleetConfig(t))
	ctx := context.Background()
	if _, err := pgflight.FetchMany(ctx, g, []string{"a", ""}, (&square{}).fn); !errors.Is(err, pgflight.ErrInvalidKey) {
		t.Errorf("empty key: err = %v, want ErrInvalidKey", err)
	}
	_, err := pgflight.FetchMany(ctx, g, []string{"a", "b"}, func(context.Context, []string) (map[string]int, error) { return nil, errBoom })
	if !errors.Is(err, errBoom) {
		t.Errorf("err = %v, want %v", err, errBoom)
	}
	_, err = pgflight.FetchMany(ctx, g, []string{"a"}, func(context.Context, []string) (map[string]int, error) { panic("batch") })
	var pe *pgflight.PanicError
	if !errors.As(err, &pe) {
		t.Errorf("err = %v, want *PanicError", err)
	}
	// nothing was stored, no lock is left
	got, err := pgflight.FetchMany(ctx, g, []string{"4"}, (&square{}).fn)
	if err != nil || got["4"] != 16 {
		t.Errorf("after failures = %v, %v", got, err)
	}
	if n := advisoryLocks(t, newPool(t)); n != 0 {
		t.Errorf("advisory locks = %d, want 0", n)
	}
	if got, err := pgflight.FetchMany(ctx, g, nil, (&square{}).fn); err != nil || len(got) != 0 {
		t.Errorf("no keys = %v, %v", got, err)
	}
}

// Issue #5: overlapping batches from several processes compute every key
// exactly once and never deadlock.
func TestMultiProcessOverlappingBatches(t *testing.T) {
	ns := namespace(t)
	ws := startWorkers(t, 4, "batch", ns, "", 3)
	release(ws)
	for _, r := range results(t, ws) {
		for _, e := range r.Errors {
			t.Errorf("worker error: %s", e)
		}
		if r.Values["ok"] != 3 {
			t.Errorf("worker results = %v, want 3 complete batches", r.Values)
		}
	}
	per, err := newRedis(t).HGetAll(context.Background(), ns+":perkey").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(per) != 30 {
		t.Errorf("keys computed = %d, want 30", len(per))
	}
	for k, n := range per {
		if n != "1" {
			t.Errorf("key %s computed %s times, want 1", k, n)
		}
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameKeys(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

// Issue 9.9: FetchMany refuses WithForceRefresh rather than returning
// cached values without calling fn.
func TestFetchManyRefusesForceRefresh(t *testing.T) {
	g := newGroup(t, pgflight.Config{Cache: memstore.New()})
	calls := 0
	fn := func(_ context.Context, keys []string) (map[string]int, error) {
		calls++
		out := map[string]int{}
		for _, k := range keys {
			out[k] = calls
		}
		return out, nil
	}
	if _, err := pgflight.FetchMany(context.Background(), g, []string{"a"}, fn); err != nil {
		t.Fatal(err)
	}
	got, err := pgflight.FetchMany(context.Background(), g, []string{"a"}, fn, pgflight.WithForceRefresh())
	if err == nil || !strings.Contains(err.Error(), "WithForceRefresh") {
		t.Fatalf("FetchMany with WithForceRefresh = %v, %v; want an error naming the option", got, err)
	}
}

// Issue 9.4 and 9.5: a FetchMany waiting for one slow key holds no lock
// but the awaited key's follow marker while it waits (it used to hold a
// shared lock per awaited key with no cap, filling PostgreSQL's lock
// table; markers count against WithMaxLocks), and a Fetch of an unrelated
// key elsewhere does not wait behind it.
func TestFetchManyWaitsHoldingNothing(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	cfg := fleetConfig(t)
	pool := newPool(t)
	unlock := holdLock(t, pool, ns, "slow") // another process computes "slow"
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: cfg.Locker})
	keys := []string{"slow"}
	for i := range 2000 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	done := make(chan error, 1)
	go func() {
		got, err := pgflight.FetchMany(ctx, g, keys, func(_ context.Context, missing []string) (map[string]string, error) {
			out := map[string]string{}
			for _, k := range missing {
				out[k] = k
			}
			return out, nil
		})
		if err == nil && len(got) != len(keys) {
			err = fmt.Errorf("got %d values, want %d", len(got), len(keys))
		}
		done <- err
	}()
	eventually(t, "FetchMany waits for the slow key", func() bool { return awaited(cfg.Locker) == 1 })
	if n, markers := advisoryLocks(t, pool), markerLocks(t, pool); n-markers != 1 || markers > 1 {
		t.Errorf("advisory locks while FetchMany waits = %d, %d of them follow markers; want the slow key's holder and at most its marker", n, markers)
	}
	other := newGroup(t, pgflight.Config{Namespace: ns, Cache: cfg.Cache, Locker: fleetConfig(t).Locker})
	if v, err := pgflight.Fetch(ctx, other, "k1999-unrelated", func(context.Context) (string, error) { return "free", nil }); v != "free" || err != nil {
		t.Fatalf("unrelated Fetch = %q, %v", v, err)
	}
	select {
	case err := <-done:
		t.Fatalf("FetchMany returned (%v) while the slow key was held", err)
	default:
	}
	unlock(ctx) // the holder stored nothing: FetchMany computes it
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := g.Stats().FailOpens; n != 0 {
		t.Errorf("FetchMany of %d keys failed open %d times, want 0: every key under its lock", len(keys), n)
	}
}
