package pgflight

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// A Group computes each key once among every process that shares its
// Locker, and caches the result in its Cache. Fetch is its main verb.
//
// A Group is safe for concurrent use by multiple goroutines. Groups never
// share state: two Groups in one process coordinate only through their
// Cache and Locker, like two processes.
type Group struct {
	cfg    Config
	cache  Cache
	locker Locker
	log    rateLimitedLogger
	obs    Observer      // nil: nothing is observed
	tier   *tier         // the local tier; nil without Config.Local
	tags   *tagState     // the versions of the namespace's tags
	syncs  atomic.Uint64 // numbers consistent reads' flights
	bc     Broadcaster   // the Locker, if it can broadcast
	self   uint64        // names this Group's broadcasts, which it skips
	txStop func()        // stops handling transactional invalidations
	stats  counters
	lockID func(namespace, key string) int64 // replaced by tests to force collisions
	now    func() time.Time                  // replaced by tests to skew the clock
	rand   func() float64                    // uniform in (0, 1]; replaced by tests

	// closing is cancelled by Close, which stops background refreshes.
	closing   context.Context
	cancelAll context.CancelFunc

	mu         sync.Mutex
	closed     bool
	flights    map[flightKey]*flight
	refreshing map[string]struct{}  // cache keys with a background refresh running
	cooldown   map[string]time.Time // cache key → no background refresh before then
	// cooldownNext is the size of cooldown that triggers its next sweep;
	// cooldownSweeps counts sweeps (for tests).
	cooldownNext, cooldownSweeps int
	running                      sync.WaitGroup // flight and refresh goroutines
	flightPool                   sync.Pool      // *flight: hits' flights that no one joined
}

// New returns a Group configured by cfg, filling in the defaults documented
// at each Config field. It fails only on an invalid Config; it does not
// contact the Cache. With pglock's Locker (a Broadcaster and an
// InvalidationSource) it subscribes to the namespace's broadcasts and
// transactional invalidations, which opens the lock session in the
// background and keeps it open until Shutdown.
func New(cfg Config) (*Group, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Group{
		cfg:        cfg,
		cache:      cfg.Cache,
		locker:     cfg.Locker,
		log:        rateLimitedLogger{l: cfg.Logger},
		obs:        cfg.Observer,
		lockID:     lockID,
		now:        time.Now,
		rand:       func() float64 { return 1 - rand.Float64() },
		flights:    make(map[flightKey]*flight),
		refreshing: make(map[string]struct{}),
		cooldown:   make(map[string]time.Time),
	}
	g.closing, g.cancelAll = context.WithCancel(context.Background())
	if g.cache == nil {
		g.cache = newLocalCache()
	}
	if g.locker == nil {
		g.locker = newLocalLocker()
	}
	g.bc, _ = g.locker.(Broadcaster)
	g.self = rand.Uint64()
	if g.tier, err = newTier(g); err != nil {
		return nil, fmt.Errorf("pgflight: Local: %w", err)
	}
	if g.tags, err = newTagState(g); err == nil {
		g.txStop, err = g.handleTxInvalidations()
	}
	if err != nil {
		g.stopWatching()
		return nil, fmt.Errorf("pgflight: Locker: %w", err)
	}
	return g, nil
}

// Close stops the Group and waits for its goroutines: it is
// Shutdown(context.Background()), and returns nil.
func (g *Group) Close() error {
	return g.Shutdown(context.Background())
}

// Shutdown stops the Group: later calls of Fetch, FetchMany and Delete
// return ErrClosed; computations in flight (Fetch's and FetchMany's) and
// background refreshes have their context cancelled; and every caller still
// waiting for a flight returns ErrClosed at once, whether or not its fn
// honours the cancellation. Shutdown then waits, within ctx, for the
// Group's goroutines and for FetchMany calls in flight to return, so that
// nothing is stored after it returns nil; if ctx ends first it returns
// ctx.Err(), and a computation that ignores its context may still store
// its value later. It closes neither the Cache nor the Locker, which the
// caller owns. Calling it again only waits again.
func (g *Group) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		g.cancelAll()
		g.stopWatching()
		for _, f := range g.flights {
			if f.cancel != nil {
				f.cancel(ErrClosed)
			}
		}
	}
	g.mu.Unlock()
	g.txStop() // outside mu: it waits for a handle, which may be inside Delete
	done := make(chan struct{})
	go func() {
		g.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pgflight: shutdown: %w", ctx.Err())
	}
}

// background runs fn in a goroutine of its own that Shutdown waits for,
// unless the Group is closed already: work that no caller waits for and
// that must not outlive the Group.
func (g *Group) background(fn func()) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.running.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.running.Done()
		fn()
	}()
}

// stopWatching ends the Group's subscriptions: its local tier's and its
// tags'.
func (g *Group) stopWatching() {
	if g.tier != nil && g.tier.stop != nil {
		g.tier.stop()
	}
	if g.tags != nil && g.tags.stop != nil {
		g.tags.stop()
	}
}

// Namespace returns the Group's namespace (Config.Namespace, or its
// default).
func (g *Group) Namespace() string { return g.cfg.Namespace }

// Stats returns a snapshot of the Group's counters.
func (g *Group) Stats() Stats { return g.stats.snapshot() }

func (g *Group) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// quoteKey quotes key for an error message or log line, shortened if long.
func quoteKey(key string) string {
	const max = 80
	if len(key) > max {
		return fmt.Sprintf("%+q...(%d bytes)", key[:max], len(key))
	}
	return fmt.Sprintf("%+q", key)
}
