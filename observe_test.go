package pgflight_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// recorder is an Observer that records its events as lines, in order.
type recorder struct {
	pgflight.NopObserver
	mu     sync.Mutex
	events []string
	seen   func(event string) // if set, called with each event
}

func (r *recorder) add(format string, args ...any) {
	e := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if r.seen != nil {
		r.seen(e)
	}
}

func (r *recorder) lines() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, "\n")
}

type spanKey struct{}

func (r *recorder) Hit(_ context.Context, d pgflight.HitData) {
	r.add("hit %s stale=%t negative=%t", d.Key, d.Stale, d.Negative)
}

func (r *recorder) FlightStart(ctx context.Context, d pgflight.FlightStartData) context.Context {
	r.add("start %s led=%t", d.Key, d.Led)
	return context.WithValue(ctx, spanKey{}, "span:"+d.Key)
}

func (r *recorder) FlightEnd(ctx context.Context, d pgflight.FlightEndData) {
	r.add("end %s led=%t outcome=%v err=%v span=%v", d.Key, d.Led, d.Outcome, d.Err != nil, ctx.Value(spanKey{}))
}

func (r *recorder) LockWait(ctx context.Context, d pgflight.LockWaitData) {
	r.add("lock %s keys=%d err=%t span=%v", d.Key, d.Keys, d.Err != nil, ctx.Value(spanKey{}))
}

func (r *recorder) FailOpen(_ context.Context, d pgflight.FailOpenData) {
	r.add("failopen %s keys=%d", d.Key, d.Keys)
}

func (r *recorder) Compute(_ context.Context, d pgflight.ComputeData) {
	r.add("compute %s keys=%d err=%t", d.Key, d.Keys, d.Err != nil)
}

func (r *recorder) Store(_ context.Context, d pgflight.StoreData) {
	r.add("store %s keys=%d bytes>0=%t err=%t", d.Key, d.Keys, d.Bytes > 0, d.Err != nil)
}

func (r *recorder) Refresh(_ context.Context, d pgflight.RefreshData) {
	r.add("refresh %s started=%t skipped=%v", d.Key, d.Started, d.Skipped)
}

func wantEvents(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	if got := r.lines(); got != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// Issue 11.1: a miss, then a hit, in the order the flight goes; the
// context FlightStart returns reaches the flight's events and fn.
func TestObserverMissThenHit(t *testing.T) {
	r := &recorder{}
	g := newGroup(t, pgflight.Config{Observer: r})
	var inFn any
	fn := func(ctx context.Context) (int, error) { inFn = ctx.Value(spanKey{}); return 1, nil }
	for range 2 {
		if _, err := pgflight.Fetch(t.Context(), g, "k", fn); err != nil {
			t.Fatal(err)
		}
	}
	wantEvents(t, r,
		"start k led=true",
		"lock k keys=0 err=false span=span:k",
		"compute k keys=0 err=false",
		"store k keys=0 bytes>0=true err=false",
		"end k led=true outcome=computed err=false span=span:k",
		"hit k stale=false negative=false",
	)
	if inFn != "span:k" {
		t.Errorf("fn's ctx carries %v, want the context FlightStart returned", inFn)
	}
}

// A caller that joins a flight, and a failed Locker: fail open.
func TestObserverJoinAndFailOpen(t *testing.T) {
	joining := make(chan struct{})
	r := &recorder{seen: func(e string) {
		if e == "start k led=false" {
			close(joining)
		}
	}}
	broken := pgflight.LockerFunc(func(context.Context, int64) (func(context.Context) error, error) {
		return nil, errors.New("lock server down")
	})
	g := newGroup(t, pgflight.Config{Observer: r, Locker: broken, Logger: discardLogger()})
	started, release := make(chan struct{}), make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(t.Context(), g, "k", func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil
		})
		errs <- err
	}()
	<-started
	joined := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(t.Context(), g, "k", func(context.Context) (int, error) { return 2, nil })
		joined <- err
	}()
	select {
	case <-joining: // FlightStart comes just before the joiner's wait
	case err := <-joined:
		t.Fatalf("the second caller returned (%v) without joining the flight", err)
	}
	close(release)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	got := r.lines()
	for _, want := range []string{
		"start k led=true",
		"lock k keys=0 err=true span=span:k",
		"failopen k keys=0",
		"start k led=false",
		"end k led=true outcome=failed-open err=false span=span:k",
		"end k led=false outcome=failed-open err=false span=span:k",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in events:\n%s", want, got)
		}
	}
}

// A stale hit starts a refresh; FetchMany reports per-key hits and one
// computation and store for the batch.
func TestObserverStaleAndMany(t *testing.T) {
	r := &recorder{}
	cache := memstore.New()
	t.Cleanup(func() { cache.Close() })
	ns := namespace(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Observer: r, Cache: cache, TTL: time.Minute, StaleTTL: time.Hour})
	many := func(_ context.Context, keys []string) (map[string]int, error) {
		m := map[string]int{}
		for _, k := range keys {
			m[k] = len(k)
		}
		return m, nil
	}
	if _, err := pgflight.FetchMany(t.Context(), g, []string{"a", "bb"}, many); err != nil {
		t.Fatal(err)
	}
	if _, err := pgflight.FetchMany(t.Context(), g, []string{"a", "bb"}, many); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, r,
		"lock  keys=2 err=false span=<nil>",
		"compute  keys=2 err=false",
		"store  keys=2 bytes>0=true err=false",
		"hit a stale=false negative=false",
		"hit bb stale=false negative=false",
	)

	started := make(chan struct{})
	r2 := &recorder{seen: func(e string) {
		if strings.HasPrefix(e, "refresh a started=true") {
			close(started)
		}
	}}
	g2 := newGroup(t, pgflight.Config{Namespace: ns, Observer: r2, Cache: cache, TTL: time.Minute, StaleTTL: time.Hour})
	pgflight.SetClock(g2, func() time.Time { return time.Now().Add(2 * time.Minute) })
	if _, err := pgflight.Fetch(t.Context(), g2, "a", func(context.Context) (int, error) { return 9, nil }); err != nil {
		t.Fatal(err)
	}
	<-started
	g2.Close() // waits for the refresh
	got := r2.lines()
	if !strings.HasPrefix(got, "hit a stale=true negative=false\n") || !strings.Contains(got, "refresh a started=true skipped=none") {
		t.Errorf("events:\n%s\nwant a stale hit, then a refresh started", got)
	}
}

// A computation that calls runtime.Goexit is reported with ErrGoexit, not
// as a success.
func TestObserverGoexit(t *testing.T) {
	r := &recorder{}
	g := newGroup(t, pgflight.Config{Observer: r})
	if _, err := pgflight.Fetch(t.Context(), g, "k", func(context.Context) (int, error) { runtime.Goexit(); return 0, nil }); !errors.Is(err, pgflight.ErrGoexit) {
		t.Fatalf("Fetch = %v, want ErrGoexit", err)
	}
	if got := r.lines(); !strings.Contains(got, "compute k keys=0 err=true") {
		t.Errorf("events:\n%s\nwant the computation reported failed", got)
	}
	if g.Namespace() == "" {
		t.Error("Namespace() is empty")
	}
}

func (r *recorder) Invalidation(_ context.Context, d pgflight.InvalidationData) {
	r.add("invalidation received=%t keys=%d all=%t err=%t", d.Received, d.Keys, d.All, d.Err != nil)
}

// Issue 11.1: invalidations sent and received reach the Observer.
func TestObserverInvalidation(t *testing.T) {
	ns := namespace(t)
	got := make(chan string, 10)
	sender, receiver := &recorder{}, &recorder{seen: func(e string) {
		if strings.HasPrefix(e, "invalidation") {
			got <- e
		}
	}}
	cfg := func(obs pgflight.Observer) pgflight.Config {
		l := pglock.New(newPool(t))
		t.Cleanup(func() { l.Close() })
		local := memstore.New()
		t.Cleanup(func() { local.Close() })
		return pgflight.Config{Namespace: ns, Cache: redisstore.New(newRedis(t)), Locker: l, Local: local, Observer: obs}
	}
	a := newGroup(t, cfg(sender))
	b := newGroup(t, cfg(receiver))
	eventually(t, "b's tier is live", func() bool { return b.Stats().LocalDrops > 0 })
	if err := a.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if e := <-got; e != "invalidation received=true keys=1 all=false err=false" {
		t.Errorf("receiver: %q", e)
	}
	if l := sender.lines(); !strings.Contains(l, "invalidation received=false keys=1 all=false err=false") {
		t.Errorf("sender events:\n%s\nwant an invalidation sent", l)
	}
}
