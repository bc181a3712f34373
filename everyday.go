package pgflight

import (
	"context"
	"fmt"
	"time"
)

// Set stores v under key, as if a Fetch had computed it: encoded by T,
// fresh for Config.TTL (or WithTTL), then stale for Config.StaleTTL (or
// WithStaleTTL). Like Delete, it is ordered after any computation of key in
// flight, so that computation's older value cannot overwrite v; every
// process's local tier drops its copy (this process keeps v), and the
// callers of later Fetches get v without computing.
//
// A value the Codec cannot encode is an [*EncodeError], and nothing is
// stored. ctx bounds the lock wait, the cache write and the broadcast.
func Set[T any](ctx context.Context, g *Group, key string, v T, opts ...Option) error {
	o := g.options(opts)
	if o.err == nil && o.force {
		o.err = fmt.Errorf("WithForceRefresh does not apply to Set")
	}
	if o.err != nil {
		return fmt.Errorf("pgflight: set %s: %w", quoteKey(key), o.err)
	}
	if err := checkKey(key); err != nil {
		return err
	}
	// Encoded before the lock is taken: a value that cannot be stored
	// costs no round trip.
	e, err := g.encode(cacheKey(g.cfg.Namespace, key), v, typed[T]{})
	if err != nil {
		return fmt.Errorf("pgflight: set %s: %w", quoteKey(key), err)
	}
	var buf []byte
	var fresh time.Duration
	tags := g.tags.section(ctx, o.tags)
	err = g.ordered(ctx, "set", key, false, func(ck string) (bool, error) {
		now := g.now()
		var ttl time.Duration
		buf, ttl, fresh = g.seal(e.payload, e.flags, tags, now, now, o)
		return true, g.cache.Set(ctx, ck, buf, ttl)
	})
	if err == nil && g.tier != nil {
		// After the broadcast dropped every copy, this process's included.
		if ttl := min(g.tier.ttl, fresh); ttl > 0 {
			g.tier.cache.Set(ctx, key, buf, ttl)
		}
	}
	return err
}

// Get returns the value cached under key without ever computing it: ok is
// false when no process has it (or the cache holds a "missing" result, or
// an entry past its stale window). A stale value within Config.StaleTTL is
// returned, without starting a refresh. A failed cache read is an error.
// Get reads the local tier first, then the shared Cache, and takes no
// lock.
func Get[T any](ctx context.Context, g *Group, key string) (v T, ok bool, err error) {
	if err := checkKey(key); err != nil {
		return v, false, err
	}
	if g.isClosed() {
		return v, false, fmt.Errorf("pgflight: get %s: %w", quoteKey(key), ErrClosed)
	}
	ck := cacheKey(g.cfg.Namespace, key)
	o := g.options(nil)
	var b []byte
	found := false
	if g.tier != nil {
		var viewed bool
		if b, viewed, found = g.getLocal(ctx, key); viewed {
			b = append([]byte(nil), b...) // a []byte value would alias the tier's bytes
		}
	}
	if !found {
		if b, found, err = g.cache.Get(ctx, ck); err != nil {
			return v, false, fmt.Errorf("pgflight: get %s: %w", quoteKey(key), err)
		}
	}
	if !found {
		return v, false, nil
	}
	r, err := g.examine(ctx, b, o)
	if err == nil && r.err == nil {
		v, err = decodeValue[T](g.cfg.Codec, r.e)
	}
	if err != nil {
		return v, false, &DecodeError{Key: ck, Err: err}
	}
	if r.err != nil || !r.usable() {
		var zero T
		return zero, false, nil // a missing result, or kept only for FailSafe
	}
	return v, true, nil
}

// Expire marks key's entry stale at once, keeping it to serve: the next
// Fetch in any process gets the old value and starts one background
// refresh, as for any stale entry, so no caller waits. It needs a stale
// window (Config.StaleTTL or WithStaleTTL): without one, or for a "missing"
// result, Expire deletes the entry like Delete. Like Delete it is ordered
// after any computation of key in flight, and every local tier drops its
// copy. Expiring a missing key is not an error.
func Expire(ctx context.Context, g *Group, key string, opts ...Option) error {
	o := g.options(opts)
	if o.err != nil {
		return fmt.Errorf("pgflight: expire %s: %w", quoteKey(key), o.err)
	}
	// The lock is released before Expire returns: a refresh that found it
	// still held would take it for another process's and skip.
	return g.ordered(ctx, "expire", key, true, func(ck string) (bool, error) {
		b, found, err := g.cache.Get(ctx, ck)
		if err != nil || !found {
			return false, err
		}
		e, err := parseEntry(b)
		if err != nil || o.stale <= 0 || e.flags&flagMissing != 0 {
			d, ok := g.cache.(Deleter)
			if !ok {
				return false, fmt.Errorf("%T cannot delete the entry, which cannot be kept stale", g.cache)
			}
			return true, d.Delete(ctx, ck)
		}
		e.freshUntil = min(e.freshUntil, g.now().UnixNano())
		return true, g.cache.Set(ctx, ck, appendEntry(make([]byte, 0, entrySize(e)), e), o.stale)
	})
}
