package pgflight

import (
	"sync/atomic"
	"time"
)

// Stats counts what a Group did since New. Every field only grows.
type Stats struct {
	Hits         uint64        // calls answered from the cache without waiting for a lock
	Misses       uint64        // flights that found no fresh entry and went for the lock
	Computations uint64        // calls of fn in this process
	Coalesced    uint64        // calls that joined a flight another caller in this process had started
	Received     uint64        // flights served a value another process (or Group) computed while they waited
	LockWait     time.Duration // total time flights spent acquiring or waiting for the lock
	LockTimeouts uint64        // lock waits cut short by Config.LockWait
	FailOpens    uint64        // flights that computed without the cluster lock because the Locker failed
	CacheErrors  uint64        // failed cache reads (counted as misses) and writes (value still returned)
	DecodeErrors uint64        // undecodable entries, recomputed and overwritten
	EncodeErrors uint64        // values the Codec could not encode (nothing stored, error returned)
	Panics       uint64        // computations that panicked or called runtime.Goexit

	StaleHits        uint64 // hits served stale (Config.StaleTTL); each may start a background refresh
	NegativeHits     uint64 // hits on a cached "missing" result (ErrMissing); also counted in Hits
	EarlyRefreshes   uint64 // background refreshes started early by XFetch (Config.EarlyRefresh)
	RefreshesStarted uint64 // background refreshes (stale or early) that called fn
	RefreshesSkipped uint64 // background refreshes that did not call fn: another caller or process was refreshing or had just refreshed, the key was refreshed recently, or MaxRefreshes was reached
}

// counters is Stats under construction, updated atomically.
type counters struct {
	hits, misses, computations, coalesced, received    atomic.Uint64
	lockWait                                           atomic.Int64
	lockTimeouts, failOpens, cacheErrors, decodeErrors atomic.Uint64
	encodeErrors, panics                               atomic.Uint64
	staleHits, negativeHits, earlyRefreshes            atomic.Uint64
	refreshesStarted, refreshesSkipped                 atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		Computations: c.computations.Load(),
		Coalesced:    c.coalesced.Load(),
		Received:     c.received.Load(),
		LockWait:     time.Duration(c.lockWait.Load()),
		LockTimeouts: c.lockTimeouts.Load(),
		FailOpens:    c.failOpens.Load(),
		CacheErrors:  c.cacheErrors.Load(),
		DecodeErrors: c.decodeErrors.Load(),
		EncodeErrors: c.encodeErrors.Load(),
		Panics:       c.panics.Load(),

		StaleHits:        c.staleHits.Load(),
		NegativeHits:     c.negativeHits.Load(),
		EarlyRefreshes:   c.earlyRefreshes.Load(),
		RefreshesStarted: c.refreshesStarted.Load(),
		RefreshesSkipped: c.refreshesSkipped.Load(),
	}
}
