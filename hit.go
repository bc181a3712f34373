package pgflight

import (
	"context"
	"runtime/debug"
)

// Hits: the reads that serve a caller without a computation or a wait,
// from the local tier (no flight at all) or from the shared Cache (the
// flight's starting caller reads it, and its joiners share the read).

// readHit is the starting caller's cache read: it serves a usable entry
// (ok), with the flight's joiners, or says the flight goes on to miss. It
// reads the local tier first, if any, and keeps there what the shared
// Cache returns fresh. A Codec that panics ends the flight with a
// *PanicError, as a panic in fn does.
func readHit[T any](ctx context.Context, f *flight) (v T, err error, ok bool) {
	g, ck := f.g, f.ck() // f is recycled once served
	var epoch uint64
	if g.tier != nil {
		epoch = g.tier.epoch(f.key).Load()
	}
	b, found := g.get(ctx, ck)
	if !found {
		return v, nil, false
	}
	v, err, r, ok := serveHit[T](ctx, f, b)
	if ok && g.tier != nil && r.state == fresh {
		g.keepLocal(ctx, ck, b, r.e, epoch)
	}
	return v, err, ok
}

// localHit serves key from the local tier, if it has a fresh copy;
// otherwise the shared Cache decides. It needs no flight, and with a
// Viewer tier allocates nothing for a string.
func localHit[T any](ctx context.Context, g *Group, key string, o callOptions, fn func(context.Context) (T, error)) (v T, err error, ok bool) {
	b, viewed, have := g.getLocal(ctx, key)
	if !have {
		return v, nil, false
	}
	// A copy is kept for at most its remaining fresh time, and the tier
	// expires it by its own clock: a copy found is fresh, with no clock
	// read here.
	r, err := parseFound(b)
	if err != nil || !g.tags.current(ctx, r.e) {
		return v, nil, false // the shared read decides, and counts it
	}
	if r.err == nil {
		var pe *PanicError
		if v, pe, err = decodeHit[T](g.cfg.Codec, r.e); pe != nil || err != nil {
			var zero T
			return zero, nil, false // the shared read decides, and reports it
		}
		if p, ok := any(&v).(*[]byte); ok && viewed && *p != nil {
			*p = append([]byte{}, *p...) // the caller may modify it; the tier's bytes must not change
		}
	}
	if refresh, early := g.served(ctx, key, o, r, true); refresh {
		g.refreshLater(ctx, cacheKey(g.cfg.Namespace, key), key, o, typed[T]{fn}, r.e, early)
	}
	return v, r.err, true
}

// serveHit serves the entry b, read from the shared Cache.
func serveHit[T any](ctx context.Context, f *flight, b []byte) (v T, err error, r found, ok bool) {
	g := f.g
	r, err = g.examine(ctx, b, f.o)
	if err == nil && !r.usable() {
		return v, nil, r, false
	}
	if err == nil && r.err == nil {
		var pe *PanicError
		if v, pe, err = decodeHit[T](g.cfg.Codec, r.e); pe != nil {
			g.stats.panics.Add(1)
			f.finish(nil, pe)
			var zero T
			return zero, pe, r, true
		}
	}
	if err != nil {
		g.undecodable(f.ck(), f.o, err)
		return v, nil, r, false
	}
	if refresh, early := g.served(ctx, f.key, f.o, r, false); refresh {
		g.refreshLater(ctx, f.ck(), f.key, f.o, f.ops, r.e, early)
	}
	finishHit(f, v, r.err)
	return v, r.err, r, true
}

// decodeHit decodes e as decodeValue does, recovering a panic in the
// Codec as a *PanicError.
func decodeHit[T any](c Codec, e entry) (v T, pe *PanicError, err error) {
	defer func() {
		if p := recover(); p != nil {
			pe = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	v, err = decodeValue[T](c, e)
	return v, nil, err
}

// finishHit publishes a hit to the flight's joiners. A flight that no
// caller joined goes back to the Group's pool: no one else has seen it.
func finishHit[T any](f *flight, v T, err error) {
	g := f.g
	g.mu.Lock()
	if g.flights[f.fk] == f {
		delete(g.flights, f.fk)
	}
	if f.done == nil {
		g.mu.Unlock()
		*f = flight{}
		g.flightPool.Put(f)
		return
	}
	f.val, f.err = v, err
	close(f.done)
	g.mu.Unlock()
}

// served accounts for a hit on key (counters, the Observer), and says
// whether a background refresh is due, and if so whether early (by
// Config.EarlyRefresh) or because the entry is stale.
func (g *Group) served(ctx context.Context, key string, o callOptions, r found, local bool) (refresh, early bool) {
	if local {
		g.stats.localHits.Add(1) // Stats.Hits adds them
	} else {
		g.stats.hits.Add(1)
	}
	if r.err != nil {
		g.stats.negativeHits.Add(1)
	}
	if g.obs != nil {
		g.obs.Hit(ctx, HitData{Namespace: g.cfg.Namespace, Key: key, Stale: r.state == stale, Negative: r.err != nil, Local: local})
	}
	if r.state == stale {
		g.stats.staleHits.Add(1)
		return true, false
	}
	if g.refreshEarly(r.e, o) {
		return true, true
	}
	return false, false
}
