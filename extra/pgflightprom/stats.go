package pgflightprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgflight/pgflight"
)

// statMetric is the counter of one field of pgflight.Stats.
type statMetric struct {
	desc  *prometheus.Desc
	value func(pgflight.Stats) float64
}

// statFields lists every field of pgflight.Stats: its metric's name
// (after "pgflight_"), help text (the field's documentation) and value.
// TestStatsComplete fails when Stats gains a field missing here.
var statFields = []struct {
	name, help string
	value      func(pgflight.Stats) float64
}{
	{"hits_total", "Keys answered from the cache without waiting for a lock.",
		func(s pgflight.Stats) float64 { return float64(s.Hits) }},
	{"misses_total", "Flights (keys) that found no fresh entry and went for the lock.",
		func(s pgflight.Stats) float64 { return float64(s.Misses) }},
	{"computations_total", "Calls of fn in this process (one per FetchMany batch).",
		func(s pgflight.Stats) float64 { return float64(s.Computations) }},
	{"coalesced_total", "Calls that joined a flight another caller in this process had started.",
		func(s pgflight.Stats) float64 { return float64(s.Coalesced) }},
	{"received_total", "Keys served a value another process (or Group) computed while they waited.",
		func(s pgflight.Stats) float64 { return float64(s.Received) }},
	{"lock_wait_seconds_total", "Total time flights spent acquiring or waiting for the lock.",
		func(s pgflight.Stats) float64 { return s.LockWait.Seconds() }},
	{"lock_timeouts_total", "Lock waits cut short by Config.LockWait.",
		func(s pgflight.Stats) float64 { return float64(s.LockTimeouts) }},
	{"fail_opens_total", "Keys computed without the cluster lock because the Locker failed: lost deduplication.",
		func(s pgflight.Stats) float64 { return float64(s.FailOpens) }},
	{"locks_lost_total", "Lock releases that failed: the lock may have been lost while held, so another process may have computed too.",
		func(s pgflight.Stats) float64 { return float64(s.LocksLost) }},
	{"cache_errors_total", "Failed cache reads (counted as misses) and writes (value still returned).",
		func(s pgflight.Stats) float64 { return float64(s.CacheErrors) }},
	{"decode_errors_total", "Undecodable entries, recomputed and overwritten; once per flight (or batch key).",
		func(s pgflight.Stats) float64 { return float64(s.DecodeErrors) }},
	{"encode_errors_total", "Values the Codec could not encode (nothing stored, error returned).",
		func(s pgflight.Stats) float64 { return float64(s.EncodeErrors) }},
	{"panics_total", "Computations that panicked or called runtime.Goexit.",
		func(s pgflight.Stats) float64 { return float64(s.Panics) }},
	{"stale_hits_total", "Hits served stale (Config.StaleTTL); each may start a background refresh.",
		func(s pgflight.Stats) float64 { return float64(s.StaleHits) }},
	{"negative_hits_total", "Hits on a cached missing result (ErrMissing); also counted in pgflight_hits_total.",
		func(s pgflight.Stats) float64 { return float64(s.NegativeHits) }},
	{"early_refreshes_total", "Background refreshes started early by XFetch (Config.EarlyRefresh).",
		func(s pgflight.Stats) float64 { return float64(s.EarlyRefreshes) }},
	{"refreshes_started_total", "Background refreshes (stale or early) that called fn.",
		func(s pgflight.Stats) float64 { return float64(s.RefreshesStarted) }},
	{"refreshes_skipped_total", "Background refreshes that did not call fn: another caller or process was refreshing or had just refreshed, the key was refreshed recently, or MaxRefreshes was reached.",
		func(s pgflight.Stats) float64 { return float64(s.RefreshesSkipped) }},
	{"local_hits_total", "Hits served by the local tier (Config.Local), without a round trip; also counted in pgflight_hits_total.",
		func(s pgflight.Stats) float64 { return float64(s.LocalHits) }},
	{"invalidations_total", "Broadcasts received from other processes telling the local tier to drop copies.",
		func(s pgflight.Stats) float64 { return float64(s.Invalidations) }},
	{"local_drops_total", "Times the whole local tier was dropped: a gap in the broadcasts (the lock session lost), or a broadcast asking for it.",
		func(s pgflight.Stats) float64 { return float64(s.LocalDrops) }},
	{"fail_safes_total", "Failed computations answered with the kept value instead (Config.FailSafe).",
		func(s pgflight.Stats) float64 { return float64(s.FailSafes) }},
	{"tag_misses_total", "Entries found but invalidated since their computation began, by a tag (WithTags) or Clear: misses.",
		func(s pgflight.Stats) float64 { return float64(s.TagMisses) }},
	{"tag_lookups_total", "Round trips to the TagSource (pglock) to learn the versions of tags the Group did not know.",
		func(s pgflight.Stats) float64 { return float64(s.TagLookups) }},
}

func newStatMetrics(constLabels prometheus.Labels) []statMetric {
	ms := make([]statMetric, len(statFields))
	for i, f := range statFields {
		ms[i] = statMetric{
			desc:  prometheus.NewDesc("pgflight_"+f.name, f.help, []string{"namespace"}, constLabels),
			value: f.value,
		}
	}
	return ms
}
