package pgflight

import (
	"sync/atomic"
	"time"
)

// Stats counts what a Group did since New. Every field only grows. Counts
// are per key: a FetchMany of n keys counts like n Fetch calls. Marshalled
// to JSON, each field's name gives its unit (lock_wait_ns is nanoseconds).
type Stats struct {
	Hits         uint64        `json:"hits"`          // keys answered from the cache without waiting for a lock
	Misses       uint64        `json:"misses"`        // flights (keys) that found no fresh entry and went for the lock
	Computations uint64        `json:"computations"`  // calls of fn in this process (one per FetchMany batch)
	Coalesced    uint64        `json:"coalesced"`     // calls that joined a flight another caller in this process had started
	Received     uint64        `json:"received"`      // keys served a value another process (or Group) computed while they waited
	LockWait     time.Duration `json:"lock_wait_ns"`  // total time flights spent acquiring or waiting for the lock
	LockTimeouts uint64        `json:"lock_timeouts"` // lock waits cut short by Config.LockWait
	FailOpens    uint64        `json:"fail_opens"`    // keys computed without the cluster lock because the Locker failed: lost deduplication
	LocksLost    uint64        `json:"locks_lost"`    // releases that failed: the lock may have been lost while held (pglock: the session died), so another process may have computed too
	CacheErrors  uint64        `json:"cache_errors"`  // failed cache reads (counted as misses) and writes (value still returned)
	DecodeErrors uint64        `json:"decode_errors"` // undecodable entries, recomputed and overwritten; once per flight (or batch key)
	EncodeErrors uint64        `json:"encode_errors"` // values the Codec could not encode (nothing stored, error returned)
	Panics       uint64        `json:"panics"`        // computations that panicked or called runtime.Goexit

	StaleHits        uint64 `json:"stale_hits"`        // hits served stale (Config.StaleTTL); each may start a background refresh
	NegativeHits     uint64 `json:"negative_hits"`     // hits on a cached "missing" result (ErrMissing); also counted in Hits
	EarlyRefreshes   uint64 `json:"early_refreshes"`   // background refreshes started early by XFetch (Config.EarlyRefresh)
	RefreshesStarted uint64 `json:"refreshes_started"` // background refreshes (stale or early) that called fn
	RefreshesSkipped uint64 `json:"refreshes_skipped"` // background refreshes that did not call fn: another caller or process was refreshing or had just refreshed, the key was refreshed recently, or MaxRefreshes was reached

	LocalHits     uint64 `json:"local_hits"`    // hits served by the local tier (Config.Local), without a round trip; also counted in Hits
	Invalidations uint64 `json:"invalidations"` // broadcasts received from other processes telling the local tier to drop copies
	LocalDrops    uint64 `json:"local_drops"`   // times the whole local tier was dropped: a gap in the broadcasts (the lock session lost), or a broadcast asking for it
	FailSafes     uint64 `json:"fail_safes"`    // failed computations answered with the kept value instead (Config.FailSafe)

	TagMisses  uint64 `json:"tag_misses"`  // entries found but invalidated since their computation began, by a tag (WithTags) or Clear: misses
	TagLookups uint64 `json:"tag_lookups"` // round trips to the TagSource (pglock) to learn the versions of tags this Group did not know
}

// counters is Stats under construction, updated atomically.
type counters struct {
	hits, misses, computations, coalesced, received    atomic.Uint64
	lockWait                                           atomic.Int64
	lockTimeouts, failOpens, cacheErrors, decodeErrors atomic.Uint64
	locksLost                                          atomic.Uint64
	encodeErrors, panics                               atomic.Uint64
	staleHits, negativeHits, earlyRefreshes            atomic.Uint64
	refreshesStarted, refreshesSkipped                 atomic.Uint64
	localHits, invalidations, localDrops, failSafes    atomic.Uint64
	tagMisses, tagLookups                              atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits:         c.hits.Load() + c.localHits.Load(),
		Misses:       c.misses.Load(),
		Computations: c.computations.Load(),
		Coalesced:    c.coalesced.Load(),
		Received:     c.received.Load(),
		LockWait:     time.Duration(c.lockWait.Load()),
		LockTimeouts: c.lockTimeouts.Load(),
		FailOpens:    c.failOpens.Load(),
		LocksLost:    c.locksLost.Load(),
		CacheErrors:  c.cacheErrors.Load(),
		DecodeErrors: c.decodeErrors.Load(),
		EncodeErrors: c.encodeErrors.Load(),
		Panics:       c.panics.Load(),

		StaleHits:        c.staleHits.Load(),
		NegativeHits:     c.negativeHits.Load(),
		EarlyRefreshes:   c.earlyRefreshes.Load(),
		RefreshesStarted: c.refreshesStarted.Load(),
		RefreshesSkipped: c.refreshesSkipped.Load(),

		LocalHits:     c.localHits.Load(),
		Invalidations: c.invalidations.Load(),
		LocalDrops:    c.localDrops.Load(),
		FailSafes:     c.failSafes.Load(),

		TagMisses:  c.tagMisses.Load(),
		TagLookups: c.tagLookups.Load(),
	}
}
