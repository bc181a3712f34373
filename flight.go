package pgflight

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// A flight is one process's attempt to produce one key's value. Every
// concurrent caller of the key joins it, so a process reads the cache,
// waits for the lock and computes at most once per key at a time.
type flight struct {
	done    chan struct{} // closed when val and err are set; made on first need, under Group.mu
	val     any
	err     error
	callers int                     // callers still waiting; guarded by Group.mu
	ctx     context.Context         // fn's context; set when the flight goes for the lock
	cancel  context.CancelCauseFunc // guarded by Group.mu
}

// flightKey separates force-refreshing flights from ordinary ones: an
// ordinary caller may be served from the cache, a force-refreshing one not.
type flightKey struct {
	key   string // the cache key
	force bool
}

// do runs or joins the flight for key and waits for its result.
//
// The caller that starts a flight reads the cache itself, so a hit needs no
// goroutine. On a miss the rest of the flight (lock, re-check, compute,
// store, release) runs in a goroutine of its own, so that every caller,
// the first included, can leave when its ctx ends while the computation
// goes on for the others.
func (g *Group) do(ctx context.Context, key string, o callOptions, ops valueOps) (any, error) {
	fk := flightKey{key: cacheKey(g.cfg.Namespace, key), force: o.force}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, fmt.Errorf("pgflight: fetch %s: %w", quoteKey(key), ErrClosed)
	}
	if f, ok := g.flights[fk]; ok {
		f.callers++
		if f.done == nil {
			f.done = make(chan struct{})
		}
		g.mu.Unlock()
		g.stats.coalesced.Add(1)
		return g.wait(ctx, fk, f)
	}
	// A hit with no one else asking never needs the done channel, so it is
	// made only when a caller waits.
	f := &flight{callers: 1}
	g.flights[fk] = f
	g.mu.Unlock()

	if !o.force {
		if r := g.read(ctx, fk.key, o, ops); r.state != absent {
			g.stats.hits.Add(1)
			if r.err != nil {
				g.stats.negativeHits.Add(1)
			}
			switch {
			case r.state == stale:
				g.stats.staleHits.Add(1)
				g.refreshLater(ctx, key, fk.key, o, ops, r.e, false)
			case g.refreshEarly(r.e, o):
				g.refreshLater(ctx, key, fk.key, o, ops, r.e, true)
			}
			g.finish(fk, f, r.v, r.err)
			return r.v, r.err
		}
	}
	g.stats.misses.Add(1)

	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		err := fmt.Errorf("pgflight: fetch %s: %w", quoteKey(key), ErrClosed)
		g.finish(fk, f, nil, err)
		return nil, err
	}
	f.ctx, f.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	if f.done == nil {
		f.done = make(chan struct{})
	}
	g.running.Add(1)
	g.mu.Unlock()
	go g.run(f, fk, key, o, ops)
	return g.wait(ctx, fk, f)
}

// wait returns the flight's result, or ctx.Err() as soon as ctx ends. The
// last caller to leave cancels the computation and forgets the flight, so a
// newcomer starts afresh instead of inheriting a cancelled flight.
//
// Close ends every wait at once with ErrClosed: a computation that ignores
// its cancelled context may finish later, but its callers have left.
func (g *Group) wait(ctx context.Context, fk flightKey, f *flight) (any, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-g.closing.Done():
		select {
		case <-f.done:
			return f.val, f.err
		default:
		}
		return nil, fmt.Errorf("pgflight: fetch %s: %w", quoteKey(fk.key), ErrClosed)
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-f.done:
		return f.val, f.err
	default:
	}
	f.callers--
	if f.callers == 0 {
		if g.flights[fk] == f {
			delete(g.flights, fk)
		}
		if f.cancel != nil {
			f.cancel(context.Canceled)
		}
	}
	return nil, ctx.Err()
}

// finish publishes the flight's result to its callers.
func (g *Group) finish(fk flightKey, f *flight, v any, err error) {
	f.val, f.err = v, err
	g.mu.Lock()
	if g.flights[fk] == f {
		delete(g.flights, fk)
	}
	if f.done != nil { // nil: no caller ever waited
		close(f.done)
	}
	g.mu.Unlock()
}

// run is the flight's goroutine after a miss.
func (g *Group) run(f *flight, fk flightKey, key string, o callOptions, ops valueOps) {
	defer g.running.Done()
	normal := false
	defer func() {
		if !normal {
			// fn called runtime.Goexit. Panics are recovered in compute, so
			// this is the only way here; the lock is released below.
			g.stats.panics.Add(1)
			g.finish(fk, f, nil, fmt.Errorf("pgflight: fetch %s: %w", quoteKey(key), ErrGoexit))
		}
		f.cancel(nil)
	}()
	// The lock is released after the callers have their result: the value
	// is stored by then, so waiters elsewhere find it, and the callers here
	// need not wait for the COMMIT (seconds, if the server stalls).
	var unlock func(context.Context) error
	defer func() {
		if unlock != nil {
			g.release(f.ctx, unlock, fk.key)
		}
	}()
	v, err := g.fill(f.ctx, fk.key, key, o, ops, &unlock)
	normal = true
	g.finish(fk, f, v, err)
}

// errNoUnlock reports a Locker that returned neither an unlock nor an error.
var errNoUnlock = errors.New("locker returned a nil unlock func")

// fill takes the lock, re-checks the cache, computes and stores. It hands
// the lock's unlock to the caller through held, which releases it.
func (g *Group) fill(ctx context.Context, ck, key string, o callOptions, ops valueOps, held *func(context.Context) error) (any, error) {
	id := g.lockID(g.cfg.Namespace, key)
	wctx, cancel := g.lockWait(ctx)
	defer cancel()
	var unlock func(context.Context) error
	var err error
	if f, ok := g.locker.(Follower); ok && !o.force {
		// LockOrFollow takes the lock, or waits for its holder, who
		// normally stored the value. If the holder failed (an error, a
		// crash), every follower wakes to a miss and tries once more, so
		// that one takes over while the others follow it and wake together
		// again; only after a second miss does a follower queue for the
		// lock. Unbounded rounds could livelock: every follower briefly
		// holds the shared lock, so every try for the exclusive one may
		// fail, round after round. Computing only under the exclusive lock,
		// after a re-check, keeps the rounds from computing twice.
		for range 2 {
			unlock, err = g.acquire(ctx, wctx, id, f.LockOrFollow)
			if err != nil || unlock != nil {
				break
			}
			if r := g.read(ctx, ck, o.again(), ops); r.state != absent {
				g.stats.received.Add(1)
				return r.v, r.err
			}
		}
		if err == nil && unlock == nil {
			unlock, err = g.acquire(ctx, wctx, id, g.locker.Lock)
		}
	} else {
		unlock, err = g.acquire(ctx, wctx, id, g.locker.Lock)
	}
	if err == nil && unlock == nil {
		err = errNoUnlock
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx) // every caller left, or Close
		}
		if g.cfg.FailClosed {
			return nil, fmt.Errorf("pgflight: fetch %s: %w: %w", quoteKey(key), ErrLockUnavailable, err)
		}
		g.stats.failOpens.Add(1)
		g.log.warn(warnLocker, "pgflight: lock unavailable, computing without it", "key", logKey(ck), "err", err)
		return g.computeAndStore(ctx, ck, o, ops)
	}
	*held = unlock
	if !o.force {
		// The double check: whoever held the lock before us may have
		// stored the value between our miss and our grant.
		if r := g.read(ctx, ck, o.again(), ops); r.state != absent {
			g.stats.received.Add(1)
			return r.v, r.err
		}
	}
	return g.computeAndStore(ctx, ck, o, ops)
}

// lockWait returns the context that bounds all of one flight's waits for
// the lock together: ctx, cut at Config.LockWait.
func (g *Group) lockWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.cfg.LockWait > 0 {
		return context.WithTimeout(ctx, g.cfg.LockWait)
	}
	return ctx, func() {}
}

// acquire calls lock under wctx, which lockWait derived from ctx (see
// waitLock).
func (g *Group) acquire(ctx, wctx context.Context, id int64, lock func(context.Context, int64) (func(context.Context) error, error)) (unlock func(context.Context) error, err error) {
	err = g.waitLock(ctx, wctx, func(wctx context.Context) error {
		unlock, err = lock(wctx, id)
		return err
	})
	return unlock, err
}

// waitLock runs wait, which takes or awaits locks under wctx, counts the
// time in Stats.LockWait, and says so in the error when LockWait cut it
// short.
func (g *Group) waitLock(ctx, wctx context.Context, wait func(context.Context) error) error {
	start := time.Now()
	err := wait(wctx)
	g.stats.lockWait.Add(int64(time.Since(start)))
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		g.stats.lockTimeouts.Add(1)
		err = fmt.Errorf("lock wait exceeded %v: %w", g.cfg.LockWait, err)
	}
	return err
}

// release unlocks with a context that outlives the flight's cancellation:
// a lock must be released even when every caller has gone.
func (g *Group) release(ctx context.Context, unlock func(context.Context) error, key string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := unlock(rctx); err != nil {
		// pglock closes the connection when it cannot commit, so
		// PostgreSQL drops the lock with the session. An error here also
		// means the lock may have been lost while held (pglock: the
		// session died), so another process may have computed too.
		g.stats.locksLost.Add(1)
		g.log.warn(warnRelease, "pgflight: release lock", "key", logKey(key), "err", err)
	}
}

// freshness is what a cache read found.
type freshness int

const (
	absent freshness = iota // nothing usable: a miss
	fresh
	stale // past its fresh time, within the stale window: serve and refresh
)

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
	b, ok, err := g.cache.Get(ctx, ck)
	if err != nil {
		if ctx.Err() == nil {
			g.stats.cacheErrors.Add(1)
			g.log.warn(warnCacheGet, "pgflight: cache read failed, treating it as a miss", "key", logKey(ck), "err", err)
		}
		return found{}
	}
	if !ok {
		return found{}
	}
	return g.interpret(ck, b, o, ops)
}

// interpret decodes the entry b read under ck.
func (g *Group) interpret(ck string, b []byte, o callOptions, ops valueOps) found {
	r := found{state: fresh}
	var err error
	r.e, err = parseEntry(b)
	if err == nil {
		if g.now().UnixNano() >= r.e.freshUntil && o.stale > 0 && r.e.flags&flagMissing == 0 {
			r.state = stale
		}
		if r.e.flags&flagMissing != 0 {
			r.err = &missingError{msg: string(r.e.payload)}
			return r
		}
		if r.v, err = ops.decode(g.cfg.Codec, r.e); err == nil {
			return r
		}
	}
	if !o.reread {
		g.stats.decodeErrors.Add(1)
	}
	g.log.warn(warnDecode, "pgflight: undecodable cache entry, recomputing", "err", &DecodeError{Key: ck, Err: err})
	return found{}
}

// computeAndStore calls fn and stores its value, or a negative entry if fn
// said the key is missing. The store runs without the callers'
// cancellation: the value is good even if they have all gone.
func (g *Group) computeAndStore(ctx context.Context, ck string, o callOptions, ops valueOps) (any, error) {
	start := g.now()
	v, payload, flags, err := g.compute(ctx, ck, ops)
	end := g.now()
	if err != nil {
		var pe *PanicError
		if !errors.Is(err, ErrMissing) || errors.As(err, &pe) {
			return nil, err // errors are never cached
		}
		payload, flags = []byte(err.Error()), flagMissing
	}
	buf, ttl := g.seal(payload, flags, start, end, o)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if serr := g.cache.Set(sctx, ck, buf, ttl); serr != nil {
		g.stats.cacheErrors.Add(1)
		g.log.warn(warnCacheSet, "pgflight: cache write failed, value returned uncached", "key", logKey(ck), "err", serr)
	}
	return v, err
}

// seal wraps payload, computed between start and end, in its envelope, and
// returns it with the TTL for the store: the fresh time (jittered) plus the
// stale window, or MissingTTL for a negative entry.
func (g *Group) seal(payload []byte, flags byte, start, end time.Time, o callOptions) ([]byte, time.Duration) {
	fresh, storeTTL := g.jitter(o.ttl), time.Duration(0)
	if flags&flagMissing != 0 {
		fresh, storeTTL = g.cfg.MissingTTL, g.cfg.MissingTTL
	} else {
		storeTTL = fresh + o.stale
	}
	e := entry{
		flags:      flags,
		computedAt: end.UnixNano(),
		freshUntil: end.Add(fresh).UnixNano(),
		took:       max(end.Sub(start), 0),
		payload:    payload,
	}
	return appendEntry(make([]byte, 0, envHeaderSize+len(payload)), e), storeTTL
}

// jitter spreads ttl by ±Config.TTLJitter.
func (g *Group) jitter(ttl time.Duration) time.Duration {
	if g.cfg.TTLJitter == 0 {
		return ttl
	}
	f := 1 + g.cfg.TTLJitter*(2*g.rand()-1)
	return max(time.Duration(float64(ttl)*f), time.Millisecond)
}

// compute calls fn and encodes its value.
func (g *Group) compute(ctx context.Context, ck string, ops valueOps) (v any, payload []byte, flags byte, err error) {
	g.stats.computations.Add(1)
	defer func() {
		// A panic in fn (or in the Codec) is recovered here, where fn runs,
		// and goes to every caller of the flight as a *PanicError. Letting
		// it unwind would kill the process from a goroutine that no caller
		// can recover in; fill's deferred release still runs, so the lock
		// is released and nothing is stored.
		if r := recover(); r != nil {
			g.stats.panics.Add(1)
			v, payload, flags = nil, nil, 0
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if v, err = ops.compute(ctx); err != nil {
		return nil, nil, 0, err
	}
	if v, payload, flags, err = ops.encode(g.cfg.Codec, v); err != nil {
		g.stats.encodeErrors.Add(1)
		return nil, nil, 0, &EncodeError{Key: ck, Err: err}
	}
	return v, payload, flags, nil
}
