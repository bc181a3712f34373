package pgflight

import (
	"context"
	"math"
	"time"
)

// cooldownSweepAt is the smallest size of Group.cooldown at which expired
// entries are swept.
const cooldownSweepAt = 4096

// refreshEarly reports whether a fresh hit on e should start an early
// refresh (XFetch): when now − δ·β·ln(U) ≥ freshUntil, δ being the last
// computation's duration and U uniform in (0, 1]. An entry that already
// looks expired on our clock (the store still has it, so our clock is
// suspect) is left to the store's TTL.
func (g *Group) refreshEarly(e entry, o callOptions) bool {
	if o.beta <= 0 || e.took <= 0 || e.flags&flagMissing != 0 {
		return false
	}
	remaining := float64(e.freshUntil - g.now().UnixNano())
	if remaining <= 0 {
		return false
	}
	return -float64(e.took)*o.beta*math.Log(g.rand()) >= remaining
}

// refreshLater starts a background refresh of key, cached under ck, whose
// entry e a caller was just served, unless one is already running
// in this process, the Group runs MaxRefreshes already, or this process
// refreshed the key less than half a TTL ago. The last rule bounds what a
// skewed clock can cost: with correct clocks an entry turns stale a whole
// TTL after its refresh, so it never delays a due refresh.
//
// The refresh is a flight of its own, with no callers. It takes the
// cluster lock with a try, so that only one process refreshes a key; the
// others skip. It re-reads the entry under the lock and skips if someone
// replaced it meanwhile. It runs under a context that keeps the caller's
// values, not its cancellation, bounded by Config.RefreshTimeout and
// cancelled by Close.
func (g *Group) refreshLater(ctx context.Context, ck, key string, o callOptions, ops valueOps, e entry, early bool) {
	now := time.Now() // the monotonic clock, immune to skew
	g.mu.Lock()
	_, running := g.refreshing[ck]
	if g.closed || running || len(g.refreshing) >= g.cfg.MaxRefreshes || now.Before(g.cooldown[ck]) {
		g.mu.Unlock()
		g.stats.refreshesSkipped.Add(1)
		g.observeRefresh(ctx, key, early, SkipBusy)
		return
	}
	g.refreshing[ck] = struct{}{}
	g.running.Add(1)
	g.mu.Unlock()
	if early {
		g.stats.earlyRefreshes.Add(1)
	}

	f := g.newFlight(flightKey{key: ck}, key, o, ops)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.RefreshTimeout)
	stop := context.AfterFunc(g.closing, cancel)
	go func() {
		defer g.running.Done()
		defer cancel()
		defer stop()
		refreshed := false
		defer func() {
			g.mu.Lock()
			delete(g.refreshing, ck)
			if refreshed {
				g.setCooldown(ck, time.Now().Add(f.o.ttl/2))
			}
			g.mu.Unlock()
		}()
		refreshed = f.refresh(rctx, e, early)
	}()
}

// refresh is a background refresh's work: the flight's fill, with a try
// for the lock. It reports whether the entry was refreshed, by this process
// or, as found under the lock, by another, or is being refreshed by
// another process: then the key's cooldown starts. A lock held by a flight
// of this process does not count: that flight may fail, or store nothing
// fresh, and the next stale hit must be free to try again.
func (f *flight) refresh(ctx context.Context, seen entry, early bool) bool {
	g := f.g
	try := g.locker.Lock
	if t, ok := g.locker.(TryLocker); ok {
		try = t.TryLock
	}
	wctx, cancel := g.lockWait(ctx)
	defer cancel()
	start := time.Now()
	unlock, err := try(wctx, g.lockID(g.cfg.Namespace, f.key))
	err = g.lockWaited(ctx, wctx, f.subject(), start, err)
	switch {
	case err != nil:
		if g.lockFailed(ctx, f.subject(), err) != nil {
			return false
		}
	case unlock == nil:
		g.stats.refreshesSkipped.Add(1) // another flight is computing
		g.observeRefresh(ctx, f.key, early, SkipLocked)
		return !g.holdsLock(f.ck())
	default:
		f.unlock = unlock
		defer f.release(ctx)
		if r := g.read(ctx, f.ck(), f.o, f.ops); r.usable() && r.e.computedAt != seen.computedAt {
			g.stats.refreshesSkipped.Add(1) // refreshed by someone else meanwhile
			g.observeRefresh(ctx, f.key, early, SkipReplaced)
			return true
		}
	}
	if ctx.Err() != nil {
		// Close (or RefreshTimeout) came while the refresh took the lock
		// or re-read the entry, whose read then failed: starting fn now
		// would compute for no one.
		return false
	}
	g.stats.refreshesStarted.Add(1)
	g.observeRefresh(ctx, f.key, early, SkipNone)
	if _, err := f.computeAndStore(ctx); err != nil && ctx.Err() == nil {
		if storedAsMissing(err) {
			g.log.warn(warnRefresh, "pgflight: background refresh found the key missing, negative entry stored", "key", logKey(f.ck()), "err", err)
			return true
		}
		g.log.warn(warnRefresh, "pgflight: background refresh failed, stale value kept", "key", logKey(f.ck()), "err", err)
		return false
	}
	return true
}

// observeRefresh tells the Observer of a refresh of key started (skip is
// SkipNone) or skipped.
func (g *Group) observeRefresh(ctx context.Context, key string, early bool, skip RefreshSkip) {
	if g.obs != nil {
		g.obs.Refresh(ctx, RefreshData{Namespace: g.cfg.Namespace, Key: key, Early: early, Started: skip == SkipNone, Skipped: skip})
	}
}

// setCooldown records that ck needs no background refresh before until.
// g.mu is held.
//
// The map is swept of expired entries when it reaches twice its size after
// the last sweep (4096 at least): a sweep of n entries comes after n
// insertions, so each costs O(1) amortised, however many keys are
// refreshed and whether or not their cooldowns have expired.
func (g *Group) setCooldown(ck string, until time.Time) {
	if len(g.cooldown) >= max(cooldownSweepAt, g.cooldownNext) {
		now := time.Now()
		for k, t := range g.cooldown {
			if now.After(t) {
				delete(g.cooldown, k)
			}
		}
		g.cooldownSweeps++
		g.cooldownNext = 2 * len(g.cooldown)
	}
	g.cooldown[ck] = until
}

// holdsLock reports whether a Fetch flight of ck in this process holds the
// key's lock (a hit's flight, which takes no lock, does not count).
func (g *Group) holdsLock(ck string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, force := range []bool{false, true} {
		if f, ok := g.flights[flightKey{key: ck, force: force}]; ok && f.holding.Load() {
			return true
		}
	}
	return false
}
