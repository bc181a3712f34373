package pgflight

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// A flight is one process's attempt to produce one key's value. Every
// concurrent caller of the key joins it, so a process reads the cache,
// waits for the lock and computes at most once per key at a time. A
// background refresh is a flight too, with no callers.
//
// The flight carries its state, as x/sync's call does: what it computes
// (set when it starts, read-only afterwards), its result, and the lock it
// holds.
type flight struct {
	g   *Group
	fk  flightKey // fk.key is the cache key
	key string    // the caller's key, for errors
	o   callOptions
	ops valueOps

	done    chan struct{} // closed when val and err are set; made on first need, under Group.mu
	val     any
	err     error
	callers int                     // callers still waiting; guarded by Group.mu
	ctx     context.Context         // fn's context; set when the flight goes for the lock
	cancel  context.CancelCauseFunc // guarded by Group.mu

	// unlock releases the lock the flight holds; only the flight's own
	// goroutine sets and calls it.
	unlock func(context.Context) error
	// holding says the flight holds the key's lock (set with unlock, read
	// by background refreshes under Group.mu: see Group.holdsLock).
	holding atomic.Bool
	// outcome says how the flight got its result; set before done closes.
	outcome Outcome
}

// flightKey separates force-refreshing flights from ordinary ones: an
// ordinary caller may be served from the cache, a force-refreshing one not.
type flightKey struct {
	key   string // the cache key
	force bool
	// sync sets apart a consistent read's flight (WithConsistentRead): it
	// joins no flight that began before its sync.
	sync uint64
}

// newFlight returns the flight that produces key's value, cached under
// fk.key, as o says.
func (g *Group) newFlight(fk flightKey, key string, o callOptions, ops valueOps) *flight {
	f, _ := g.flightPool.Get().(*flight)
	if f == nil {
		f = new(flight)
	}
	f.g, f.fk, f.key, f.o, f.ops = g, fk, key, o, ops
	return f
}

// ck returns the flight's cache key.
func (f *flight) ck() string { return f.fk.key }

// subject names the flight's key in errors and logs.
func (f *flight) subject() subject { return subject{key: f.key, ck: f.fk.key} }

// fetch is Fetch after its checks: it runs or joins the flight for key
// and waits for its result.
//
// The caller that starts a flight reads the cache itself, so a hit needs no
// goroutine; callers that arrive meanwhile join the flight and share its
// read. fetch is generic so that a hit with no one else asking decodes
// straight into a T and costs the cache read and nothing more (its flight
// is recycled, nothing is boxed). On a miss the rest of the flight (lock,
// re-check, compute, store, release) runs in a goroutine of its own, so
// that every caller, the first included, can leave when its ctx ends while
// the computation goes on for the others.
func fetch[T any](ctx context.Context, g *Group, key string, o callOptions, fn func(context.Context) (T, error)) (T, error) {
	var start time.Time
	if g.obs != nil {
		start = time.Now()
	}
	if g.tier != nil && !o.force {
		// A local copy is served at once: it costs no round trip, so
		// concurrent callers gain nothing from sharing its read.
		if v, err, ok := localHit(ctx, g, key, o, fn); ok {
			return v, err
		}
	}
	ck := cacheKey(g.cfg.Namespace, key)
	fk := flightKey{key: ck, force: o.force}
	if o.sync {
		fk.sync = g.syncs.Add(1)
	}
	f, joined, err := g.join(fk, key, o, typed[T]{fn})
	switch {
	case err != nil:
		var zero T
		return zero, err
	case joined:
		return valueOf[T](key)(f.joinedWait(ctx, start))
	case !o.force:
		if v, err, ok := readHit[T](ctx, f); ok {
			return v, err
		}
	}
	return valueOf[T](key)(f.miss(ctx, start))
}

// join joins this process's flight of fk, or registers a new one that the
// caller starts.
func (g *Group) join(fk flightKey, key string, o callOptions, ops valueOps) (f *flight, joined bool, err error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, false, fmt.Errorf("pgflight: fetch %s: %w", quoteKey(key), ErrClosed)
	}
	if f, ok := g.flights[fk]; ok {
		f.callers++
		if f.done == nil {
			f.done = make(chan struct{})
		}
		g.mu.Unlock()
		g.stats.coalesced.Add(1)
		return f, true, nil
	}
	f = g.newFlight(fk, key, o, ops)
	f.callers = 1
	g.flights[fk] = f
	g.mu.Unlock()
	return f, false, nil
}

// valueOf returns a function that turns a flight's result into a T, as
// the caller of key wants it.
func valueOf[T any](key string) func(v any, err error) (T, error) {
	return func(v any, err error) (T, error) {
		var zero T
		if err != nil || v == nil {
			return zero, err
		}
		t, ok := v.(T)
		if !ok {
			return zero, fmt.Errorf("pgflight: fetch %s: flight computed a %T, caller wants a %T", quoteKey(key), v, zero)
		}
		return t, nil
	}
}

// miss goes on with the flight after the starting caller's miss (or
// straight away when it forces a refresh), and waits for its result.
func (f *flight) miss(ctx context.Context, start time.Time) (any, error) {
	g := f.g
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		err := fmt.Errorf("pgflight: fetch %s: %w", quoteKey(f.key), ErrClosed)
		f.finish(nil, err)
		return nil, err
	}
	g.stats.misses.Add(1)
	octx := ctx
	if g.obs != nil {
		octx = g.obs.FlightStart(ctx, FlightStartData{Namespace: g.cfg.Namespace, Key: f.key, Start: start, Led: true})
	}
	f.ctx, f.cancel = context.WithCancelCause(context.WithoutCancel(octx))
	if f.done == nil {
		f.done = make(chan struct{})
	}
	g.running.Add(1)
	g.mu.Unlock()
	go f.run()
	v, err, served := f.wait(ctx)
	if g.obs != nil {
		f.observeEnd(octx, start, true, served, err)
	}
	return v, err
}

// joinedWait waits for the flight as a caller that joined it at start,
// and tells the Observer.
func (f *flight) joinedWait(ctx context.Context, start time.Time) (any, error) {
	g := f.g
	if g.obs == nil {
		v, err, _ := f.wait(ctx)
		return v, err
	}
	octx := g.obs.FlightStart(ctx, FlightStartData{Namespace: g.cfg.Namespace, Key: f.key, Start: start})
	v, err, served := f.wait(ctx)
	f.observeEnd(octx, start, false, served, err)
	return v, err
}

// observeEnd tells the Observer how a caller's wait that began at start
// ended; served says it got the flight's result.
func (f *flight) observeEnd(ctx context.Context, start time.Time, led, served bool, err error) {
	d := FlightEndData{Namespace: f.g.cfg.Namespace, Key: f.key, Led: led, Err: err, Duration: time.Since(start)}
	if served {
		d.Outcome = f.outcome
	}
	f.g.obs.FlightEnd(ctx, d)
}

// wait returns the flight's result (served), or ctx.Err() as soon as ctx
// ends. The
// last caller to leave cancels the computation and forgets the flight, so a
// newcomer starts afresh instead of inheriting a cancelled flight.
//
// Close ends every wait at once with ErrClosed: a computation that ignores
// its cancelled context may finish later, but its callers have left.
func (f *flight) wait(ctx context.Context) (v any, err error, served bool) {
	g := f.g
	select {
	case <-f.done:
		return f.val, f.err, true
	case <-g.closing.Done():
		select {
		case <-f.done:
			return f.val, f.err, true
		default:
		}
		return nil, fmt.Errorf("pgflight: fetch %s: %w", quoteKey(f.key), ErrClosed), false
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-f.done:
		return f.val, f.err, true
	default:
	}
	f.callers--
	if f.callers == 0 {
		if g.flights[f.fk] == f {
			delete(g.flights, f.fk)
		}
		if f.cancel != nil {
			f.cancel(context.Canceled)
		}
	}
	return nil, ctx.Err(), false
}

// finish publishes the flight's result to its callers.
func (f *flight) finish(v any, err error) {
	g := f.g
	f.val, f.err = v, err
	g.mu.Lock()
	if g.flights[f.fk] == f {
		delete(g.flights, f.fk)
	}
	if f.done != nil { // nil: no caller ever waited
		close(f.done)
	}
	g.mu.Unlock()
}

// run is the flight's goroutine after a miss.
func (f *flight) run() {
	g := f.g
	defer g.running.Done()
	normal := false
	defer func() {
		if !normal {
			// fn called runtime.Goexit. Panics are recovered in
			// Group.compute, so this is the only way here; the lock is
			// released below.
			g.stats.panics.Add(1)
			f.finish(nil, fmt.Errorf("pgflight: fetch %s: %w", quoteKey(f.key), ErrGoexit))
		}
		f.cancel(nil)
	}()
	// The lock is released only after the callers have their result. The
	// value is stored by then, so whoever waits for the lock elsewhere finds
	// it; and the callers here need not wait for the release's round trip,
	// which takes seconds if the server stalls.
	defer f.release(f.ctx)
	v, err := f.fill(f.ctx)
	normal = true
	f.finish(v, err)
}

// fill takes the lock, re-checks the cache, computes and stores. The lock
// it takes stays in f.unlock for run to release.
func (f *flight) fill(ctx context.Context) (any, error) {
	g := f.g
	wctx, cancel := g.lockWait(ctx)
	defer cancel()
	r, err := f.lock(ctx, wctx)
	if f.unlock != nil {
		f.holding.Store(true)
	}
	f.outcome = OutcomeComputed
	switch {
	case r.usable():
		g.stats.received.Add(1) // the holder we followed stored it
		f.outcome = OutcomeReceived
		return r.v, r.err
	case err != nil:
		if err := g.lockFailed(ctx, f.subject(), err); err != nil {
			f.outcome = OutcomeNone
			return nil, err
		}
		f.outcome = OutcomeFailedOpen
	case !f.o.force:
		// The double check: whoever held the lock before us may have
		// stored the value between our miss and our grant.
		if r := f.reread(ctx); r.usable() {
			g.stats.received.Add(1)
			f.outcome = OutcomeReceived
			return r.v, r.err
		}
	}
	return f.computeAndStore(ctx)
}

// lock takes the key's lock into f.unlock, or returns the value that the
// holder it followed stored. It fails only when the Locker does, or when
// ctx or wctx (the lock wait) ends.
//
// With a Follower it follows a holder instead of queuing behind it: every
// process waiting for one computation then wakes at once, to the holder's
// value. If the holder stored nothing (an error, a crash), every follower
// wakes to a miss and tries once more, so that one takes over while the
// others follow it and wake together again; only after a second miss does a
// follower queue for the lock. Unbounded rounds could livelock: every
// follower briefly holds the shared lock, so every try for the exclusive
// one may fail, round after round. Computing only under the exclusive lock,
// after a re-check, keeps the rounds from computing twice.
func (f *flight) lock(ctx, wctx context.Context) (found, error) {
	g := f.g
	id := g.lockID(g.cfg.Namespace, f.key)
	if fl, ok := g.locker.(Follower); ok && !f.o.force {
		for range 2 {
			start := time.Now()
			unlock, err := fl.LockOrFollow(wctx, id)
			if err := g.lockWaited(ctx, wctx, f.subject(), start, err); err != nil || unlock != nil {
				f.unlock = unlock
				return found{}, err
			}
			if r := f.reread(ctx); r.usable() {
				return r, nil
			}
		}
	}
	start := time.Now()
	unlock, err := g.locker.Lock(wctx, id)
	if err = g.lockWaited(ctx, wctx, f.subject(), start, err); err == nil && unlock == nil {
		err = errNoUnlock
	}
	if err != nil {
		return found{}, err
	}
	f.unlock = unlock
	return found{}, nil
}

// release releases the lock the flight holds, if any.
func (f *flight) release(ctx context.Context) {
	if f.unlock != nil {
		f.holding.Store(false)
		f.g.release(ctx, f.unlock, f.subject())
		f.unlock = nil
	}
}

// computeAndStore calls fn and stores its value, or a negative entry if fn
// said the key is missing (see Group.compute and Group.store, the policy
// FetchMany shares).
func (f *flight) computeAndStore(ctx context.Context) (any, error) {
	g := f.g
	var e encoded
	fctx, ttl := withEntryTTL(ctx)
	tags := g.tags.section(ctx, f.o.tags) // before fn reads anything
	start := g.now()
	err := g.compute(ctx, f.subject(), func() error {
		v, err := f.ops.compute(fctx)
		if err == nil {
			e, err = g.encode(f.ck(), v, f.ops)
		}
		return err
	})
	end := g.now()
	if err != nil {
		if !storedAsMissing(err) {
			if v, ok := f.failSafe(ctx, err); ok {
				return v, nil
			}
			return nil, err // errors are never cached
		}
		e = missingEntry(err.Error())
	}
	g.store(ctx, f.subject(), []string{f.ck()}, []encoded{e}, tags, start, end, ttl.apply(f.o))
	return e.v, err
}

// reread reads the flight's entry again: a follower's read of what the
// holder it waited for stored, or a holder's double check. With a local
// tier, a fresh value found there (another process computed it) is kept
// as a local copy, as a hit's is.
func (f *flight) reread(ctx context.Context) found {
	g, ck := f.g, f.ck()
	var epoch uint64
	if g.tier != nil {
		epoch = g.tier.epoch(f.key).Load()
	}
	b, ok := g.get(ctx, ck)
	if !ok {
		return found{}
	}
	r := g.interpret(ctx, ck, b, f.o.again(), f.ops)
	if g.tier != nil && r.state == fresh {
		g.keepLocal(ctx, ck, b, r.e, epoch)
	}
	return r
}
