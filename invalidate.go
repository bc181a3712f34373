package pgflight

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Delete removes key's entry from the cache, so that the next Fetch
// computes it again. It requires a Cache that implements [Deleter] and
// returns an error wrapping errors.ErrUnsupported otherwise. Deleting a
// missing key is not an error.
//
// Delete is ordered after any computation of key in flight: once it
// returns, no value computed by a flight that began before it is served,
// in any process sharing the Locker. To that end it takes the key's lock
// before it deletes: a computation holding the lock stores its value
// first (and the delete removes it), and one that starts later reads the
// data only after Delete began. So Delete waits for an in-flight
// computation of key, within Config.LockWait, and costs one lock round
// trip more than the cache's delete; the release does not delay it. If
// the lock cannot be taken (the Locker fails, or LockWait runs out),
// Delete follows the fail-open policy: it deletes at once, counts a
// fail-open and logs (with Config.FailClosed it returns an error wrapping
// ErrLockUnavailable instead, having deleted nothing). What it cannot
// order: a computation that failed open itself, or whose lock the lock
// server lost (Stats.FailOpens, Stats.LocksLost), may store a value
// computed from older data after Delete returned; that value lives until
// its TTL or the next Delete.
//
// Delete drops this process's local copy (Config.Local), and with a Locker
// that can broadcast (pglock) it broadcasts the key before it returns:
// every process's local tier drops its copy when the broadcast arrives (see
// the README's section on invalidation).
//
// ctx bounds the lock wait, the cache call and the broadcast.
func (g *Group) Delete(ctx context.Context, key string) error {
	d, ok := g.cache.(Deleter)
	if !ok {
		if err := checkKey(key); err != nil {
			return err
		}
		return fmt.Errorf("pgflight: delete %s: %T cannot delete: %w", quoteKey(key), g.cache, errors.ErrUnsupported)
	}
	return g.ordered(ctx, "delete", key, false, func(ck string) (bool, error) {
		return true, d.Delete(ctx, ck)
	})
}

// changed drops the local copy of ck, if any, and with a Locker that can
// broadcast tells every process to drop theirs, before the operation that
// changed ck returns.
func (g *Group) changed(ctx context.Context, ck string) error {
	if g.tier == nil && g.bc == nil {
		return nil
	}
	if err := g.deletedLocal(ctx, ck); err != nil {
		return fmt.Errorf("done, but other processes may keep their local copy until Config.LocalTTL: %w", err)
	}
	return nil
}

// ordered runs op on key's cache key holding key's lock, so that op is
// ordered after any computation of key in flight in any process (see
// Delete, which documents the guarantee and the fail-open policy it
// follows). When op reports that it changed the entry, every local tier
// is told (changed) once the lock is released: in the background unless
// wait says otherwise, so that with pglock the release and the broadcast
// usually share the lock session's round trip.
func (g *Group) ordered(ctx context.Context, verb, key string, wait bool, op func(ck string) (changed bool, err error)) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if g.isClosed() {
		return fmt.Errorf("pgflight: %s %s: %w", verb, quoteKey(key), ErrClosed)
	}
	ck := cacheKey(g.cfg.Namespace, key)
	s := subject{key: key, ck: ck, verb: verb}
	wctx, cancel := g.lockWait(ctx)
	defer cancel()
	start := time.Now()
	unlock, err := g.locker.Lock(wctx, g.lockID(g.cfg.Namespace, key))
	if err = g.lockWaited(ctx, wctx, s, start, err); err == nil && unlock == nil {
		err = errNoUnlock
	}
	if err != nil {
		if err := g.lockFailed(ctx, s, err); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("pgflight: %s %s: %w", verb, quoteKey(key), err)
			}
			return err
		}
		unlock = nil
	}
	changed, err := op(ck)
	switch {
	case unlock == nil:
	case wait:
		g.release(ctx, unlock, s)
	default:
		g.releaseLater(unlock, s)
	}
	if err == nil && changed {
		err = g.changed(ctx, ck)
	}
	if err != nil {
		return fmt.Errorf("pgflight: %s %s: %w", verb, quoteKey(key), err)
	}
	return nil
}

// releaseLater releases a lock in the background, for a caller that need
// not wait for the round trip. Close waits for it.
func (g *Group) releaseLater(unlock func(context.Context) error, s subject) {
	g.mu.Lock()
	g.running.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.running.Done()
		g.release(context.Background(), unlock, s)
	}()
}
