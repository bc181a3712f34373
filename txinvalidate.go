package pgflight

import (
	"cmp"
	"context"
	"errors"
	"sync"
)

// An InvalidationSource is a Locker that also delivers the invalidations
// an application records in its own database transactions: pglock's
// Locker, for pglock.Invalidate, which writes them to an outbox table in
// the transaction, so that they take effect at COMMIT and never on
// ROLLBACK. Every Group whose Locker is an InvalidationSource and whose
// Cache can delete calls HandleInvalidations once, at New, for its
// namespace, and calls stop at Shutdown.
//
// HandleInvalidations calls handle, from a goroutine of its own, with the
// keys of each invalidation of namespace committed by any process, until
// stop is called; stop waits for a handle in progress to return. Delivery
// is at least once: an invalidation whose handle returns an error, or
// whose process dies during handle, is delivered again later, possibly to
// another process. handle's ctx ends when stop is called.
type InvalidationSource interface {
	Locker
	HandleInvalidations(namespace string, handle func(ctx context.Context, keys []string) error) (stop func(), err error)
}

// handleTxInvalidations makes g delete the keys of every invalidation of
// its namespace committed through its Locker's database, if the Locker is
// an InvalidationSource and the Cache a Deleter; otherwise it does nothing
// and returns a stop that does nothing. Each key goes through g.Delete, so
// the delete is ordered after a computation of the key in flight, and
// every process's local tier drops its copy.
//
// New calls it once the tier is set up; Shutdown calls stop, without g.mu
// held (stop waits for a handle that may be inside Delete).
func (g *Group) handleTxInvalidations() (stop func(), err error) {
	src, ok := g.locker.(InvalidationSource)
	if _, deletes := g.cache.(Deleter); !ok || !deletes {
		return func() {}, nil
	}
	return src.HandleInvalidations(g.cfg.Namespace, g.txInvalidated)
}

// txParallel bounds the Deletes of one transactional invalidation that run
// at once: with pglock their lock operations share the session's round
// trips, so n keys cost about n/txParallel round trips, not n.
const txParallel = 32

// txInvalidated deletes keys, invalidated in a committed transaction, up to
// txParallel at once. An error leaves the invalidation for a later
// delivery (every key is deleted again then: Delete is idempotent); an
// invalid key, which no entry can have, is done with.
func (g *Group) txInvalidated(ctx context.Context, keys []string) error {
	if len(keys) == 1 {
		return g.txDelete(ctx, keys[0])
	}
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, txParallel)
	var wg sync.WaitGroup
	for _, key := range keys {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := g.txDelete(ctx, key); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// txDelete deletes one key of a transactional invalidation.
func (g *Group) txDelete(ctx context.Context, key string) error {
	if err := g.Delete(ctx, key); err != nil && !errors.Is(err, ErrInvalidKey) {
		g.log.warn(warnBroadcast, "pgflight: could not apply an invalidation committed in a transaction; it will be retried", "key", quoteKey(key), "err", err)
		return err
	}
	return nil
}
