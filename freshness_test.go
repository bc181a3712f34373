package pgflight_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// clock is a settable clock for SetClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// A stale hit returns the stale value at once and starts one background
// refresh; further stale hits meanwhile start none.
func TestStaleWhileRevalidate(t *testing.T) {
	clk := newClock()
	cfg := pgflight.Config{Namespace: namespace(t), Cache: memstore.New(), TTL: time.Hour, StaleTTL: time.Hour}
	ctx := context.Background()
	// The entry is written by a Group of its own, closed before the test
	// goes on: a flight releases its lock after its callers have their
	// value, and a refresh that found the lock still held would skip.
	seed := newGroup(t, cfg)
	pgflight.SetClock(seed, clk.Now)
	if _, err := pgflight.Fetch(ctx, seed, "k", func(context.Context) (string, error) { return "v1", nil }); err != nil {
		t.Fatal(err)
	}
	seed.Close()
	g := newGroup(t, cfg)
	pgflight.SetClock(g, clk.Now)
	clk.Add(61 * time.Minute) // stale, within the stale window
	release := make(chan struct{})
	var refreshes atomic.Int64
	refresh := func(context.Context) (string, error) {
		refreshes.Add(1)
		<-release
		return "v2", nil
	}
	for range 5 {
		v, err := pgflight.Fetch(ctx, g, "k", refresh)
		if v != "v1" || err != nil {
			t.Fatalf("stale Fetch = %q, %v; want the stale value at once", v, err)
		}
	}
	s := g.Stats()
	if s.StaleHits != 5 || s.RefreshesSkipped != 4 {
		t.Errorf("stats = %+v, want 5 stale hits, 4 refreshes skipped", s)
	}
	close(release)
	eventually(t, "the refresh is stored", func() bool {
		v, _ := pgflight.Fetch(ctx, g, "k", refresh)
		return v == "v2"
	})
	if n := refreshes.Load(); n != 1 {
		t.Errorf("refresh computations = %d, want 1", n)
	}
	if s := g.Stats(); s.RefreshesStarted != 1 {
		t.Errorf("refreshes started = %d, want 1", s.RefreshesStarted)
	}
}

// Without a stale window an entry that looks expired is a miss only if the
// store dropped it: the store's TTL is what bounds age.
func TestStaleWindowZeroServesNothingStale(t *testing.T) {
	g := newGroup(t, pgflight.Config{Cache: memstore.New()})
	ctx := context.Background()
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return calls, nil }
	pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTTL(20*time.Millisecond))
	eventually(t, "the store drops the entry and Fetch recomputes", func() bool {
		v, _ := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTTL(20*time.Millisecond))
		return v > 1
	})
	if s := g.Stats(); s.StaleHits != 0 {
		t.Errorf("stale hits = %d, want 0", s.StaleHits)
	}
}

// Issue #4 (11): a process whose clock is off by minutes neither serves
// expired values forever nor recomputes fresh ones on every call.
func TestClockSkew(t *testing.T) {
	ctx := context.Background()
	for _, stale := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("stale=%v", stale), func(t *testing.T) {
			cache := memstore.New()
			ns := namespace(t)
			cfg := pgflight.Config{Namespace: ns, Cache: cache, TTL: time.Minute, StaleTTL: stale}
			normal := newGroup(t, cfg)
			ahead := newGroup(t, cfg)
			pgflight.SetClock(ahead, func() time.Time { return time.Now().Add(10 * time.Minute) })
			behind := newGroup(t, cfg)
			pgflight.SetClock(behind, func() time.Time { return time.Now().Add(-10 * time.Minute) })

			pgflight.Fetch(ctx, normal, "k", func(context.Context) (string, error) { return "v", nil })
			var recomputed atomic.Int64
			fn := func(context.Context) (string, error) { recomputed.Add(1); return "again", nil }
			for range 20 {
				for _, g := range []*pgflight.Group{ahead, behind} {
					if _, err := pgflight.Fetch(ctx, g, "k", fn); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Wait for any background refresh to finish.
			eventually(t, "background refreshes end", func() bool {
				s := ahead.Stats()
				return stale == 0 || s.RefreshesStarted+s.RefreshesSkipped >= s.StaleHits
			})
			limit := int64(0)
			if stale > 0 {
				limit = 1 // at most one background refresh by the skewed process
			}
			if n := recomputed.Load(); n > limit {
				t.Errorf("skewed processes recomputed %d times in 40 calls, want ≤ %d", n, limit)
			}
		})
	}
	// A clock running behind does not keep an entry past the store's TTL.
	g := newGroup(t, pgflight.Config{Cache: memstore.New()})
	pgflight.SetClock(g, func() time.Time { return time.Now().Add(-10 * time.Minute) })
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return calls, nil }
	pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTTL(20*time.Millisecond))
	eventually(t, "the entry expires for a clock running behind", func() bool {
		v, _ := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTTL(20*time.Millisecond))
		return v > 1
	})
}

// XFetch: a fresh hit refreshes early exactly when now − δ·β·ln(U) ≥
// freshUntil, with an injected clock and U.
func TestEarlyRefreshFollowsTheFormula(t *testing.T) {
	const ttl, delta = time.Minute, 2 * time.Second
	clk := newClock()
	var u atomic.Value
	g := newGroup(t, pgflight.Config{Cache: memstore.New(), TTL: ttl, EarlyRefresh: 1})
	pgflight.SetClock(g, clk.Now)
	pgflight.SetRand(g, func() float64 { return u.Load().(float64) })
	ctx := context.Background()
	cases := []struct {
		remaining time.Duration
		beta, u   float64
	}{
		{30 * time.Second, 1, 0.5}, // −2s·ln 0.5 = 1.39s < 30s
		{time.Second, 1, 0.5},      // 1.39s ≥ 1s
		{time.Second, 1, 0.7},      // 0.71s < 1s
		{time.Second, 2, 0.7},      // 1.43s ≥ 1s
		{5 * time.Second, 1, 0.05}, // 5.99s ≥ 5s
		{5 * time.Second, 1, 0.1},  // 4.61s < 5s
		{10 * time.Millisecond, 1, 1},
		{10 * time.Millisecond, 0, 0.01}, // off
	}
	for i, tc := range cases {
		key := fmt.Sprintf("k%d", i)
		start := time.Now()
		clk.Set(start)
		// The computation "takes" delta on the injected clock.
		pgflight.Fetch(ctx, g, key, func(context.Context) (int, error) { clk.Add(delta); return 1, nil })
		freshUntil := start.Add(delta).Add(ttl)
		clk.Set(freshUntil.Add(-tc.remaining))
		u.Store(tc.u)
		before := g.Stats().EarlyRefreshes
		pgflight.Fetch(ctx, g, key, func(context.Context) (int, error) { return 2, nil }, pgflight.WithEarlyRefresh(tc.beta))
		got := g.Stats().EarlyRefreshes > before
		want := tc.beta > 0 && -float64(delta)*tc.beta*logf(tc.u) >= float64(tc.remaining)
		if got != want {
			t.Errorf("remaining %v, β %v, U %v: early refresh = %v, want %v", tc.remaining, tc.beta, tc.u, got, want)
		}
	}
}

// Negative caching: ErrMissing is cached for MissingTTL; other errors not.
func TestNegativeCaching(t *testing.T) {
	g := newGroup(t, pgflight.Config{Cache: memstore.New(), MissingTTL: time.Hour})
	ctx := context.Background()
	calls := 0
	missing := func(context.Context) (int, error) {
		calls++
		return 0, fmt.Errorf("user 7 not found: %w", pgflight.ErrMissing)
	}
	for range 3 {
		_, err := pgflight.Fetch(ctx, g, "user:7", missing)
		if !errors.Is(err, pgflight.ErrMissing) || !strings.Contains(err.Error(), "user 7 not found") {
			t.Fatalf("err = %v, want ErrMissing with fn's message", err)
		}
	}
	if calls != 1 {
		t.Errorf("computations = %d, want 1", calls)
	}
	if s := g.Stats(); s.NegativeHits != 2 {
		t.Errorf("negative hits = %d, want 2", s.NegativeHits)
	}
	// A short MissingTTL expires; ordinary errors are never cached.
	short := newGroup(t, pgflight.Config{Cache: memstore.New(), MissingTTL: 10 * time.Millisecond})
	calls = 0
	pgflight.Fetch(ctx, short, "user:7", missing)
	eventually(t, "the negative entry expires", func() bool {
		pgflight.Fetch(ctx, short, "user:7", missing)
		return calls > 1
	})
	errs := 0
	for range 3 {
		pgflight.Fetch(ctx, g, "flaky", func(context.Context) (int, error) { errs++; return 0, errBoom })
	}
	if errs != 3 {
		t.Errorf("ordinary errors computed %d times, want 3 (never cached)", errs)
	}
	// A force refresh replaces a negative entry.
	v, err := pgflight.Fetch(ctx, g, "user:7", func(context.Context) (int, error) { return 7, nil }, pgflight.WithForceRefresh())
	if v != 7 || err != nil {
		t.Errorf("force refresh over a negative entry = %d, %v", v, err)
	}
	if v, err := pgflight.Fetch(ctx, g, "user:7", missing); v != 7 || err != nil {
		t.Errorf("after refresh = %d, %v; want 7, nil", v, err)
	}
}

// TTL jitter spreads fresh time by ±TTLJitter.
func TestTTLJitter(t *testing.T) {
	cache := memstore.New()
	ns := namespace(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache, TTL: 100 * time.Second, TTLJitter: 0.2})
	ctx := context.Background()
	for _, tc := range []struct {
		u    float64
		want time.Duration
	}{{1, 120 * time.Second}, {0.5, 100 * time.Second}, {1e-9, 80 * time.Second}} {
		pgflight.SetRand(g, func() float64 { return tc.u })
		key := fmt.Sprint(tc.u)
		pgflight.Fetch(ctx, g, key, func(context.Context) (int, error) { return 1, nil })
		b, ok, _ := cache.Get(ctx, ns+":"+key)
		if !ok {
			t.Fatal("nothing stored")
		}
		computed := int64(binary.BigEndian.Uint64(b[3:]))
		fresh := int64(binary.BigEndian.Uint64(b[11:]))
		if got := time.Duration(fresh - computed); got < tc.want-time.Millisecond || got > tc.want+time.Millisecond {
			t.Errorf("U = %v: fresh for %v, want %v", tc.u, got, tc.want)
		}
	}
	if _, err := pgflight.New(pgflight.Config{TTLJitter: 1}); err == nil {
		t.Error("TTLJitter 1 accepted")
	}
}

// Issue #5: two processes serve the stale value while exactly one refreshes.
func TestMultiProcessStale(t *testing.T) {
	ns := namespace(t)
	// Seed the entry; the workers' clocks run 61 minutes ahead, so to them
	// it is stale but inside the one-hour stale window.
	seed := newGroup(t, pgflight.Config{Namespace: ns, Cache: fleetConfig(t).Cache, TTL: time.Hour, StaleTTL: time.Hour})
	if _, err := pgflight.Fetch(context.Background(), seed, "k", func(context.Context) (string, error) { return "v1", nil }); err != nil {
		t.Fatal(err)
	}
	ws := startWorkers(t, 2, "stale", ns, "k", 20)
	release(ws)
	for _, wk := range ws {
		waitForLine(t, []*worker{wk}, "served")
	}
	if err := newRedis(t).Set(context.Background(), ns+":release", 1, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	final := map[string]bool{}
	for _, r := range results(t, ws) {
		for _, e := range r.Errors {
			t.Errorf("worker error: %s", e)
		}
		for v, n := range r.Values {
			switch {
			case v == "v1" && n == 20:
			case strings.HasPrefix(v, "refreshed by ") && n == 1:
				final[v] = true
			default:
				t.Errorf("value %q returned %d times; want v1 20 times, then the refreshed value once", v, n)
			}
		}
	}
	if len(final) != 1 {
		t.Errorf("refreshed values = %v, want one for both processes", final)
	}
	if n := redisCounter(t, ns); n != 1 {
		t.Errorf("refresh computations across processes = %d, want 1", n)
	}
}

// Issue #5: a negative entry is shared across processes.
func TestMultiProcessNegativeCache(t *testing.T) {
	ns := namespace(t)
	ws := startWorkers(t, 3, "missing", ns, "user:7", 10)
	release(ws)
	values := map[string]int{}
	for _, r := range results(t, ws) {
		for _, e := range r.Errors {
			t.Errorf("worker error: %s", e)
		}
		for v, n := range r.Values {
			values[v] += n
		}
	}
	if len(values) != 1 || values["missing: user 7 not found: missing"] != 30 {
		t.Errorf("results = %v, want 30 × the same ErrMissing", values)
	}
	if n := redisCounter(t, ns); n != 1 {
		t.Errorf("lookups across processes = %d, want 1", n)
	}
}

func logf(x float64) float64 { return math.Log(x) }

// Issue 9.12: a refresh that finds the key missing says so, instead of
// claiming to keep the stale value it replaced with a negative entry.
func TestRefreshFindingKeyMissingSaysSo(t *testing.T) {
	cache := memstore.New()
	ns := namespace(t)
	ctx := context.Background()
	// The entry is written by a Group of its own, closed before the test
	// goes on: a flight releases its lock after its callers have their
	// value, and a refresh that found the lock still held would skip.
	g1, err := pgflight.New(pgflight.Config{Namespace: ns, Cache: cache, TTL: time.Minute, StaleTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgflight.Fetch(ctx, g1, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	g1.Close()

	logs := &signalLog{want: "background refresh", seen: make(chan struct{})}
	g, err := pgflight.New(pgflight.Config{Namespace: ns, Cache: cache, TTL: time.Minute, StaleTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	pgflight.SetClock(g, func() time.Time { return time.Now().Add(2 * time.Minute) }) // stale now
	v, err := pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) {
		return 0, fmt.Errorf("gone: %w", pgflight.ErrMissing)
	})
	if v != 1 || err != nil {
		t.Fatalf("stale hit = %d, %v; want the stale 1", v, err)
	}
	<-logs.seen // the refresh has logged what it did
	if got := logs.String(); !strings.Contains(got, "negative entry stored") || strings.Contains(got, "stale value kept") {
		t.Errorf("log = %q, want it to say a negative entry was stored", got)
	}
}

// signalLog is a log buffer that closes seen when a line holding want is
// written.
type signalLog struct {
	leakLog
	want string
	seen chan struct{}
	once sync.Once
}

func (s *signalLog) Write(p []byte) (int, error) {
	n, err := s.leakLog.Write(p)
	if bytes.Contains(p, []byte(s.want)) {
		s.once.Do(func() { close(s.seen) })
	}
	return n, err
}

// Issue 9.6: refreshing many keys costs O(1) per refresh, amortised: the
// cooldown map is swept a logarithmic number of times, not once per
// refresh once it holds 4,096 live entries.
func TestCooldownSweepsAmortised(t *testing.T) {
	g := newGroup(t, pgflight.Config{})
	if n := pgflight.SetCooldowns(g, 64000); n > 10 {
		t.Errorf("64,000 refreshed keys swept the cooldown map %d times, want a handful (amortised O(1))", n)
	}
}
