package pgflight

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	stats  counters
	lockID func(namespace, key string) int64 // replaced by tests to force collisions

	mu      sync.Mutex
	closed  bool
	flights map[flightKey]*flight
	running sync.WaitGroup // flight goroutines
}

// New returns a Group configured by cfg, filling in the defaults documented
// at each Config field. It fails only on an invalid Config; it does not
// contact the Cache or the Locker.
func New(cfg Config) (*Group, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Group{
		cfg:     cfg,
		cache:   cfg.Cache,
		locker:  cfg.Locker,
		log:     rateLimitedLogger{l: cfg.Logger},
		lockID:  lockID,
		flights: make(map[flightKey]*flight),
	}
	if g.cache == nil {
		g.cache = newLocalCache()
	}
	if g.locker == nil {
		g.locker = newLocalLocker()
	}
	return g, nil
}

// Close stops the Group: later calls of Fetch and Delete return ErrClosed,
// computations in flight have their context cancelled, and their callers
// get ErrClosed. Close waits for the flights' goroutines to return, then
// returns nil. It closes neither the Cache nor the Locker, which the caller
// owns. Calling Close again does nothing.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	for _, f := range g.flights {
		if f.cancel != nil {
			f.cancel(ErrClosed)
		}
	}
	g.mu.Unlock()
	g.running.Wait()
	return nil
}

// Delete removes key's entry from the cache, so that the next Fetch
// computes it again. It requires a Cache that implements [Deleter] and
// returns an error wrapping errors.ErrUnsupported otherwise. Deleting a
// missing key is not an error. ctx bounds the cache call.
func (g *Group) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if g.isClosed() {
		return fmt.Errorf("pgflight: delete %s: %w", quoteKey(key), ErrClosed)
	}
	d, ok := g.cache.(Deleter)
	if !ok {
		return fmt.Errorf("pgflight: delete %s: %T cannot delete: %w", quoteKey(key), g.cache, errors.ErrUnsupported)
	}
	if err := d.Delete(ctx, cacheKey(g.cfg.Namespace, key)); err != nil {
		return fmt.Errorf("pgflight: delete %s: %w", quoteKey(key), err)
	}
	return nil
}

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
		return fmt.Sprintf("%q…(%d bytes)", key[:max], len(key))
	}
	return fmt.Sprintf("%q", key)
}
