package pgflight_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// Issue 11.6: Set stores a known value that Fetch then serves; Get reads
// without computing.
func TestSetAndGet(t *testing.T) {
	g := newGroup(t, pgflight.Config{})
	ctx := context.Background()
	never := func(context.Context) (string, error) { return "", errors.New("fn called") }
	if _, ok, err := pgflight.Get[string](ctx, g, "k"); ok || err != nil {
		t.Fatalf("Get of a missing key = %v, %v; want not found", ok, err)
	}
	if err := pgflight.Set(ctx, g, "k", "known"); err != nil {
		t.Fatal(err)
	}
	if v, err := pgflight.Fetch(ctx, g, "k", never); err != nil || v != "known" {
		t.Errorf("Fetch after Set = %q, %v; want known", v, err)
	}
	if v, ok, err := pgflight.Get[string](ctx, g, "k"); !ok || err != nil || v != "known" {
		t.Errorf("Get = %q, %v, %v; want known", v, ok, err)
	}
	if err := pgflight.Set(ctx, g, "k", "newer"); err != nil {
		t.Fatal(err)
	}
	if v, _ := pgflight.Fetch(ctx, g, "k", never); v != "newer" {
		t.Errorf("Fetch after a second Set = %q, want newer", v)
	}
	if err := pgflight.Set(ctx, g, "bad", func() {}); !errors.As(err, new(*pgflight.EncodeError)) {
		t.Errorf("Set of a func = %v, want an *EncodeError", err)
	}
	if _, ok, _ := pgflight.Get[string](ctx, g, "bad"); ok {
		t.Error("a value that could not be encoded was stored")
	}
	if err := pgflight.Set(ctx, g, "", "x"); !errors.Is(err, pgflight.ErrInvalidKey) {
		t.Errorf("Set of an empty key = %v, want ErrInvalidKey", err)
	}
	// A cached "missing" result is not found.
	pgflight.Fetch(ctx, g, "gone", func(context.Context) (string, error) { return "", pgflight.ErrMissing })
	if _, ok, err := pgflight.Get[string](ctx, g, "gone"); ok || err != nil {
		t.Errorf("Get of a missing result = %v, %v; want not found", ok, err)
	}
}

// Set with a local tier replaces the local copy too.
func TestSetLocalTier(t *testing.T) {
	local := memstore.New()
	t.Cleanup(func() { local.Close() })
	g := newGroup(t, pgflight.Config{Local: local})
	ctx := context.Background()
	pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 1, nil })
	if err := pgflight.Set(ctx, g, "k", 2); err != nil {
		t.Fatal(err)
	}
	if v, _ := pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 3, nil }); v != 2 {
		t.Errorf("Fetch after Set = %d, want 2", v)
	}
}

// Expire keeps the value to serve stale while one refresh runs; without a
// stale window it deletes.
func TestExpire(t *testing.T) {
	ctx := context.Background()
	cache := memstore.New()
	t.Cleanup(func() { cache.Close() })
	g := newGroup(t, pgflight.Config{Cache: cache, TTL: time.Hour, StaleTTL: time.Hour})
	pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 1, nil })
	if err := pgflight.Expire(ctx, g, "k"); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan struct{})
	v, err := pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { defer close(refreshed); return 2, nil })
	if err != nil || v != 1 {
		t.Fatalf("Fetch after Expire = %d, %v; want the old 1, served stale", v, err)
	}
	<-refreshed
	if s := g.Stats(); s.StaleHits != 1 {
		t.Errorf("StaleHits = %d, want 1", s.StaleHits)
	}
	if err := pgflight.Expire(ctx, g, "missing-key"); err != nil {
		t.Errorf("Expire of a missing key = %v, want nil", err)
	}

	g2 := newGroup(t, pgflight.Config{Cache: cache})
	pgflight.Fetch(ctx, g2, "k", func(context.Context) (int, error) { return 1, nil })
	if err := pgflight.Expire(ctx, g2, "k"); err != nil {
		t.Fatal(err)
	}
	if v, _ := pgflight.Fetch(ctx, g2, "k", func(context.Context) (int, error) { return 5, nil }); v != 5 {
		t.Errorf("without a stale window, Fetch after Expire = %d, want 5 (computed again)", v)
	}
}

func ExampleSet() {
	g, _ := pgflight.New(pgflight.Config{})
	defer g.Close()
	ctx := context.Background()
	pgflight.Set(ctx, g, "greeting", "hello")
	v, _ := pgflight.Fetch(ctx, g, "greeting", func(context.Context) (string, error) { return "computed", nil })
	fmt.Println(v)
	// Output: hello
}

func ExampleGet() {
	g, _ := pgflight.New(pgflight.Config{})
	defer g.Close()
	ctx := context.Background()
	_, ok, _ := pgflight.Get[int](ctx, g, "answer")
	fmt.Println(ok)
	pgflight.Fetch(ctx, g, "answer", func(context.Context) (int, error) { return 42, nil })
	v, ok, _ := pgflight.Get[int](ctx, g, "answer")
	fmt.Println(v, ok)
	// Output:
	// false
	// 42 true
}

func ExampleExpire() {
	g, _ := pgflight.New(pgflight.Config{StaleTTL: time.Hour})
	defer g.Close()
	ctx := context.Background()
	pgflight.Fetch(ctx, g, "report", func(context.Context) (string, error) { return "v1", nil })
	pgflight.Expire(ctx, g, "report")
	// The old value is served at once; one background refresh computes v2.
	v, _ := pgflight.Fetch(ctx, g, "report", func(context.Context) (string, error) { return "v2", nil })
	fmt.Println(v)
	// Output: v1
}

// Issue 11.6, adaptive TTL: fn sets its entry's TTL from the value.
func TestSetTTL(t *testing.T) {
	cache := memstore.New()
	t.Cleanup(func() { cache.Close() })
	g := newGroup(t, pgflight.Config{Cache: cache, TTL: time.Minute})
	ctx := context.Background()
	var bad error
	if _, err := pgflight.Fetch(ctx, g, "token", func(ctx context.Context) (string, error) {
		bad = pgflight.SetTTL(ctx, -time.Second)
		return "t", pgflight.SetTTL(ctx, 90*time.Second)
	}); err != nil {
		t.Fatal(err)
	}
	if bad == nil {
		t.Error("SetTTL of a negative duration = nil, want an error")
	}
	e, err := pgflight.Inspect(ctx, cache, g.Namespace(), "token")
	if err != nil || !e.Found {
		t.Fatalf("Inspect = %+v, %v", e, err)
	}
	if d := e.FreshUntil.Sub(e.ComputedAt); d != 90*time.Second {
		t.Errorf("fresh for %v, want the 90s fn chose", d)
	}
	if err := pgflight.SetTTL(ctx, time.Second); err == nil {
		t.Error("SetTTL outside fn = nil, want an error")
	}
	// FetchMany: one TTL for the batch.
	if _, err := pgflight.FetchMany(ctx, g, []string{"a", "b"}, func(ctx context.Context, keys []string) (map[string]int, error) {
		return map[string]int{"a": 1, "b": 2}, pgflight.SetTTL(ctx, 2*time.Hour)
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if e, _ := pgflight.Inspect(ctx, cache, g.Namespace(), k); e.FreshUntil.Sub(e.ComputedAt) != 2*time.Hour {
			t.Errorf("%s fresh for %v, want 2h", k, e.FreshUntil.Sub(e.ComputedAt))
		}
	}
}

func ExampleSetTTL() {
	g, _ := pgflight.New(pgflight.Config{})
	defer g.Close()
	token, _ := pgflight.Fetch(context.Background(), g, "token", func(ctx context.Context) (string, error) {
		// The source says how long its answer is good for.
		pgflight.SetTTL(ctx, 50*time.Minute)
		return "abc", nil
	})
	fmt.Println(token)
	// Output: abc
}

// Issue 11.6, fail-safe: when fn fails, the kept value is served, fresh
// again for the throttle, and fn is not asked again meanwhile; past the
// fail-safe age the error comes through.
func TestFailSafe(t *testing.T) {
	cache := memstore.New()
	t.Cleanup(func() { cache.Close() })
	g := newGroup(t, pgflight.Config{Cache: cache, TTL: time.Minute, FailSafe: time.Hour, FailSafeThrottle: 30 * time.Second, Logger: discardLogger()})
	ctx := context.Background()
	calls := 0
	failing := func(context.Context) (int, error) { calls++; return 0, errors.New("source down") }
	pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 1, nil })

	at := func(d time.Duration) { pgflight.SetClock(g, func() time.Time { return time.Now().Add(d) }) }
	at(2 * time.Minute) // past its fresh time
	if _, ok, _ := pgflight.Get[int](ctx, g, "k"); ok {
		t.Error("Get found a value kept only for fail-safe, past its window")
	}
	if v, err := pgflight.Fetch(ctx, g, "k", failing); err != nil || v != 1 {
		t.Fatalf("Fetch with a failing fn = %d, %v; want the kept 1", v, err)
	}
	if v, err := pgflight.Fetch(ctx, g, "k", failing); err != nil || v != 1 || calls != 1 {
		t.Errorf("within the throttle: Fetch = %d, %v after %d calls of fn; want 1 and fn called once", v, err, calls)
	}
	if s := g.Stats(); s.FailSafes != 1 {
		t.Errorf("FailSafes = %d, want 1", s.FailSafes)
	}
	at(3 * time.Minute) // past the throttle: fn is asked again, and succeeds
	if v, _ := pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 3, nil }); v != 3 {
		t.Errorf("after the throttle Fetch = %d, want 3", v)
	}
	at(2 * time.Hour) // past the fail-safe age of 3
	if _, err := pgflight.Fetch(ctx, g, "k", failing); err == nil || err.Error() != "source down" {
		t.Errorf("past the fail-safe age Fetch = %v, want fn's error", err)
	}
	if _, err := pgflight.New(pgflight.Config{FailSafe: -time.Second}); err == nil {
		t.Error("New with a negative FailSafe = nil error")
	}
}
