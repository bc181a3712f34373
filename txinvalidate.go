package pgflight

import (
	"context"
	"errors"
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

// txInvalidated deletes keys, invalidated in a committed transaction. An
// error leaves the invalidation for a later delivery; an invalid key,
// which no entry can have, is done with.
func (g *Group) txInvalidated(ctx context.Context, keys []string) error {
	for _, key := range keys {
		if err := g.Delete(ctx, key); err != nil && !errors.Is(err, ErrInvalidKey) {
			g.log.warn(warnBroadcast, "pgflight: could not apply an invalidation committed in a transaction; it will be retried", "key", quoteKey(key), "err", err)
			return err
		}
	}
	return nil
}
