package pgflight

import (
	"context"
	"fmt"
	"time"
)

// freshness is what a cache read found.
type freshness int

const (
	absent freshness = iota // nothing usable: a miss
	fresh
	stale // past its fresh time, within the stale window: serve and refresh
	kept  // past its stale window, kept for Config.FailSafe: served only if fn fails
)

// usable reports whether the entry found is served.
func (r found) usable() bool { return r.state == fresh || r.state == stale }

// found is the result of a cache read.
type found struct {
	state freshness
	v     any
	err   error // a negative entry: wraps ErrMissing
	e     entry
}

// read reads and decodes ck's entry. A failed read or an undecodable entry
// counts as a miss.
//
// Times in an entry come from the writer's clock, which may be off from
// ours. The store's own TTL, which it counts from the write on its own
// clock, is what bounds an entry's age; fresh-until only tells fresh from
// stale inside that lifetime. So an entry that looks expired to us while
// the store still has it is fresh when there is no stale window (the store
// would have dropped it otherwise), and stale when there is one: a skewed
// clock then costs at most a background refresh, rate-limited per key (see
// refreshLater), never a recomputation on every call. A clock running
// behind serves nothing the store has dropped.
func (g *Group) read(ctx context.Context, ck string, o callOptions, ops valueOps) found {
	b, ok := g.get(ctx, ck)
	if !ok {
		return found{}
	}
	return g.interpret(ctx, ck, b, o, ops)
}

// interpret decodes the entry b read under ck.
func (g *Group) interpret(ctx context.Context, ck string, b []byte, o callOptions, ops valueOps) found {
	r, err := g.examine(ctx, b, o)
	if err == nil && r.state != absent && r.err == nil {
		r.v, err = ops.decode(g.cfg.Codec, r.e)
	}
	if err != nil {
		g.undecodable(ck, o, err)
		return found{}
	}
	return r
}

// examine parses the entry b and says how fresh it is; for a negative
// entry r.err wraps ErrMissing. It leaves the payload to decode. An entry
// whose tags (or the namespace) were invalidated after its computation
// began is absent.
func (g *Group) examine(ctx context.Context, b []byte, o callOptions) (r found, err error) {
	if r, err = parseFound(b); err != nil {
		return r, err
	}
	if !g.tags.current(ctx, r.e) {
		if !o.reread {
			g.stats.tagMisses.Add(1)
		}
		return found{}, nil
	}
	if r.err != nil {
		return r, nil
	}
	now := g.now().UnixNano()
	if o.stale > 0 && now >= r.e.freshUntil {
		r.state = stale
	}
	if g.cfg.FailSafe > 0 && now >= r.e.freshUntil+int64(o.stale) {
		// The store keeps entries for the fail-safe age, so past the
		// window is past it on our clock as well.
		r.state = kept
	}
	return r, nil
}

// parseFound parses the entry b as fresh, without a clock: examine decides
// its freshness, and the local tier needs none (see localHit). For a
// negative entry r.err wraps ErrMissing.
func parseFound(b []byte) (r found, err error) {
	if r.e, err = parseEntry(b); err != nil {
		return found{}, err
	}
	r.state = fresh
	if r.e.flags&flagMissing != 0 {
		r.err = &missingError{msg: string(r.e.payload)}
	}
	return r, nil
}

// undecodable accounts for the entry under ck that could not be decoded,
// which counts as a miss.
func (g *Group) undecodable(ck string, o callOptions, err error) {
	if !o.reread {
		g.stats.decodeErrors.Add(1)
	}
	g.log.warn(warnDecode, "pgflight: undecodable cache entry, recomputing", "err", &DecodeError{Key: ck, Err: err})
}

// get reads ck from the cache: a failed read is a miss, counted and
// logged.
func (g *Group) get(ctx context.Context, ck string) ([]byte, bool) {
	b, ok, err := g.cache.Get(ctx, ck)
	if err != nil {
		if ctx.Err() == nil {
			g.stats.cacheErrors.Add(1)
			g.log.warn(warnCacheGet, "pgflight: cache read failed, treating it as a miss", "key", logKey(ck), "err", err)
		}
		return nil, false
	}
	return b, ok
}

// getMany reads cks, in one round trip if the Cache is a BatchCache. A nil
// value is a miss; a failed read is a miss for every key.
func (g *Group) getMany(ctx context.Context, cks []string) [][]byte {
	if bc, ok := g.cache.(BatchCache); ok {
		vals, err := bc.GetMany(ctx, cks)
		if err == nil && len(vals) == len(cks) {
			return vals
		}
		if err == nil {
			err = fmt.Errorf("GetMany returned %d values for %d keys", len(vals), len(cks))
		}
		if ctx.Err() == nil {
			g.stats.cacheErrors.Add(1)
			g.log.warn(warnCacheGet, "pgflight: cache read failed, treating it as a miss", "keys", len(cks), "err", err)
		}
		return make([][]byte, len(cks))
	}
	vals := make([][]byte, len(cks))
	for i, ck := range cks {
		b, ok, err := g.cache.Get(ctx, ck)
		if err != nil && ctx.Err() == nil {
			g.stats.cacheErrors.Add(1)
			g.log.warn(warnCacheGet, "pgflight: cache read failed, treating it as a miss", "key", logKey(ck), "err", err)
		}
		if ok {
			if b == nil {
				b = []byte{}
			}
			vals[i] = b
		}
	}
	return vals
}

// seal wraps payload, computed between start and end, in its envelope with
// the tag section tags, and returns it with the TTL for the store (the
// fresh time, jittered, plus the stale window, or MissingTTL for a negative
// entry) and the fresh time.
func (g *Group) seal(payload []byte, flags byte, tags tagSection, start, end time.Time, o callOptions) (buf []byte, storeTTL, fresh time.Duration) {
	fresh = g.jitter(o.ttl)
	if flags&flagMissing != 0 {
		fresh, storeTTL = g.cfg.MissingTTL, g.cfg.MissingTTL
	} else {
		storeTTL = max(fresh+o.stale, g.cfg.FailSafe)
	}
	e := entry{
		flags:      flags,
		computedAt: end.UnixNano(),
		freshUntil: end.Add(fresh).UnixNano(),
		took:       max(end.Sub(start), 0),
		tags:       tags,
		payload:    payload,
	}
	return appendEntry(make([]byte, 0, entrySize(e)), e), storeTTL, fresh
}

// jitter spreads ttl by ±Config.TTLJitter.
func (g *Group) jitter(ttl time.Duration) time.Duration {
	if g.cfg.TTLJitter == 0 {
		return ttl
	}
	f := 1 + g.cfg.TTLJitter*(2*g.rand()-1)
	return max(time.Duration(float64(ttl)*f), time.Millisecond)
}

// setMany stores entries, in one round trip if the Cache is a BatchCache,
// and returns the first error.
func (g *Group) setMany(ctx context.Context, cks []string, vals [][]byte, ttls []time.Duration) error {
	if len(cks) == 1 {
		return g.cache.Set(ctx, cks[0], vals[0], ttls[0])
	}
	if bc, ok := g.cache.(BatchCache); ok {
		return bc.SetMany(ctx, cks, vals, ttls)
	}
	var first error
	for i, ck := range cks {
		if err := g.cache.Set(ctx, ck, vals[i], ttls[i]); err != nil && first == nil {
			first = err
		}
	}
	return first
}
