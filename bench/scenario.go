package main

import (
	"math"
	"slices"
	"strings"
	"time"
)

// A scenario is one workload, run by every contender it lists.
type scenario struct {
	name       string
	title      string // of its section in the report; "": the name
	group      string // selects it, with the others of its group, in -scenarios
	runs       int    // repetitions at most, to bound a full run's time; 0: -runs
	procs      int
	contenders []string    // nil: all but the variants
	with       []string    // variants that run too, when contenders is nil
	crash      bool        // kill the first worker to compute, half-way through
	pairs      [][2]string // contenders also run in one fleet, taking turns (see runLoop)
	job        func(o *options) job
	measure    func(j job, r *fleetResult, p peaks) metrics
}

// repetitions returns how many times sc runs when every scenario runs
// runs times.
func (sc *scenario) repetitions(runs int) int {
	if sc.runs > 0 {
		return min(runs, sc.runs)
	}
	return runs
}

// metrics are the numbers of one run, by name. A number that could not be
// measured (a crash never recovered from) is +Inf.
type metrics map[string]float64

// scenarios returns the scenarios in the order they run and are reported.
func scenarios(o *options) []*scenario {
	return []*scenario{
		{name: "stampede", procs: o.procs, with: []string{"pgflight-tx"}, job: func(o *options) job {
			return job{Work: workOnce, Goroutines: o.goroutines, Compute: o.compute, TTL: time.Minute, Times: true}
		}, measure: measureOnce},
		{name: "crash", procs: o.procs, crash: true, with: []string{"pgflight-tx"}, job: func(o *options) job {
			return job{Work: workOnce, Goroutines: o.goroutines, Compute: o.compute, TTL: time.Minute, Announce: true, Times: true}
		}, measure: measureCrash},
		{name: "expiry", procs: o.procs, job: func(o *options) job {
			return job{Work: workLoop, Goroutines: o.loopGoroutines, Compute: o.expiryCompute, TTL: o.expiryTTL,
				Duration: o.expiryDuration, Keys: 1, Warm: true, Times: true}
		}, measure: measureExpiry},
		{name: "expiry-stale", title: "Expiry with stale", procs: o.procs,
			contenders: []string{"pgflight", "pgflight-stale", "pgflight-xfetch"}, job: func(o *options) job {
				return job{Work: workLoop, Goroutines: o.loopGoroutines, Compute: o.expiryCompute, TTL: o.expiryTTL,
					Duration: o.expiryDuration, Keys: 1, Warm: true, Times: true, StaleTTL: o.expiryStale, Calls: true}
			}, measure: measureStale},
		{name: "zipf", procs: o.procs, with: []string{"pgflight-tx"}, job: func(o *options) job {
			return job{Work: workLoop, Goroutines: o.zipfGoroutines, Compute: o.zipfCompute, TTL: 10 * time.Minute,
				Duration: o.zipfDuration, Keys: o.zipfKeys, Zipf: o.zipfS}
		}, measure: measureLoop, pairs: [][2]string{{"none", "pgflight"}}},
		{name: "hits", procs: o.procs, job: func(o *options) job {
			return job{Work: workLoop, Goroutines: o.loopGoroutines, TTL: 10 * time.Minute,
				Duration: o.hitsDuration, Keys: o.zipfKeys, Warm: true}
		}, measure: measureLoop, pairs: [][2]string{{"none", "pgflight"}, {"none", "none"},
			{"none-deadline", "pgflight-deadline"}}},
		{name: "coldstart-small", title: o.coldSmall.title(), group: "coldstart", procs: o.procs,
			contenders: coldSmallContenders, job: func(o *options) job { return o.coldSmall.job() }, measure: measureColdStart},
		{name: "coldstart-large", title: o.coldLarge.title(), group: "coldstart", procs: o.procs, runs: 3,
			contenders: coldLargeContenders, job: func(o *options) job { return o.coldLarge.job() }, measure: measureColdStart},
		{name: "manykeys", procs: 1, contenders: []string{"pgflight", "pgflight-tx"}, job: func(o *options) job {
			return job{Work: workMany, Goroutines: o.manyKeys, Compute: o.manyCompute, TTL: time.Minute}
		}, measure: measureMany},
	}
}

// measureOnce measures a stampede: every call's latency from the release,
// and when the first computation started, from the first release.
func measureOnce(j job, r *fleetResult, p peaks) metrics {
	var lat []int64
	m := common(r, p)
	release, start := int64(math.MaxInt64), int64(math.MaxInt64)
	for _, w := range r.reports {
		lat = append(lat, w.Latencies...)
		release = min(release, w.Release)
		for _, t := range w.ComputeTimes {
			start = min(start, t)
		}
	}
	if start != math.MaxInt64 && release != math.MaxInt64 {
		m["start"] = ms(start - release)
	}
	slices.Sort(lat)
	m["p50"] = ms(percentile(lat, 0.50))
	m["p99"] = ms(percentile(lat, 0.99))
	m["max"] = ms(percentile(lat, 1))
	if st, ok := m["start"]; ok {
		m["fanout"] = m["max"] - st - ms(int64(j.Compute))
	}
	return m
}

// measureCrash measures, beyond a stampede's numbers for the survivors,
// the time from the kill until every surviving caller had a value: +Inf if
// any surviving call failed. When the survivors' first computation started
// after the kill (a takeover), it splits that time into the takeover (kill
// to the new computation's start), the computation, and the fan-out (its
// end to the last survivor served).
func measureCrash(j job, r *fleetResult, p peaks) metrics {
	m := measureOnce(j, r, p)
	var last int64
	first := int64(math.MaxInt64)
	for _, w := range r.reports {
		for _, d := range w.Done {
			last = max(last, d)
		}
		for _, t := range w.ComputeTimes {
			first = min(first, t)
		}
	}
	m["recovery"] = ms(last - r.killAt)
	if m["errors"] > 0 || last == 0 {
		m["recovery"] = math.Inf(1)
	}
	delete(m, "fanout")
	if first != math.MaxInt64 && first > r.killAt && last > 0 {
		m["takeover"] = ms(first - r.killAt)
		m["fanout"] = ms(last - first - int64(j.Compute))
	}
	return m
}

// measureExpiry measures a hot key's recomputations. Computations that
// started within half a TTL of each other belong to one expiry: a value
// stays fresh for a TTL after it is stored, so two of them are a duplicate.
// It reports computations per TTL period of the run (the measure;
// the start adds one when the key was cold), per expiry, and the most in
// one expiry.
func measureExpiry(j job, r *fleetResult, p peaks) metrics {
	m := measureLoop(j, r, p)
	var times []int64
	var elapsed int64
	for _, w := range r.reports {
		times = append(times, w.ComputeTimes...)
		elapsed = max(elapsed, w.Elapsed)
	}
	slices.Sort(times)
	m["per_period"] = float64(len(times)) / (float64(elapsed) / float64(j.TTL))
	waves, most, n := 0, 0, 0
	var start int64
	for _, t := range times {
		if waves == 0 || t-start >= int64(j.TTL/2) {
			waves, start, n = waves+1, t, 0
		}
		n++
		most = max(most, n)
	}
	m["expiries"] = float64(waves)
	if waves > 0 {
		m["per_expiry"] = float64(len(times)) / float64(waves)
	}
	m["max_wave"] = float64(most)
	return m
}

// measureStale measures, beyond a hot key's recomputations, what the
// callers saw across the expiries: the latency of the calls that started
// within one computation time of a recomputation's start, before or after
// it (the "rc_" metrics), against that of the other calls, which are hits
// in every contender. Calls are chosen by when they started, as for the
// whole run, not by whether they overlapped a computation, which would
// favour slow calls. It also counts duplicates, computations that started
// less than two computation times after another (while its value was not
// yet stored), and reports pgflight's counters: the flights that missed,
// each of which waited for a computation, and the stale hits and the
// background refreshes.
func measureStale(j job, r *fleetResult, p peaks) metrics {
	m := measureExpiry(j, r, p)
	var starts []int64
	for _, w := range r.reports {
		starts = append(starts, w.ComputeTimes...)
	}
	slices.Sort(starts)
	d := int64(j.Compute)
	dups := 0
	for i := 1; i < len(starts); i++ {
		if starts[i]-starts[i-1] < 2*d {
			dups++
		}
	}
	m["dups"] = float64(dups)
	var around, outside []int64
	for _, w := range r.reports {
		for i := 0; i+1 < len(w.CallTimes); i += 2 {
			start := w.Release + int64(w.CallTimes[i])*int64(time.Microsecond)
			lat := int64(w.CallTimes[i+1]) * int64(time.Microsecond)
			if near(starts, start, d) {
				around = append(around, lat)
			} else {
				outside = append(outside, lat)
			}
		}
	}
	slices.Sort(around)
	slices.Sort(outside)
	m["rc_calls"] = float64(len(around))
	if len(around) > 0 {
		m["rc_p50"], m["rc_p99"], m["rc_max"] = ms(percentile(around, 0.5)), ms(percentile(around, 0.99)), ms(percentile(around, 1))
	}
	if len(outside) > 0 {
		m["out_p99"] = ms(percentile(outside, 0.99))
		if len(around) > 0 && m["out_p99"] > 0 {
			m["rc_ratio"] = m["rc_p99"] / m["out_p99"]
		}
	}
	if st := sumStats(r.reports); st != nil {
		m["waits"] = float64(st.Misses)
		m["stale_hits"] = float64(st.StaleHits)
		m["refreshes"] = float64(st.RefreshesStarted)
		m["skipped"] = float64(st.RefreshesSkipped)
		m["early"] = float64(st.EarlyRefreshes)
	}
	return m
}

// near reports whether t is within d of one of starts (sorted).
func near(starts []int64, t, d int64) bool {
	i, _ := slices.BinarySearch(starts, t-d) // the first start at t−d or later
	return i < len(starts) && starts[i] <= t+d
}

// measureLoop measures a tight loop: throughput, and computations per key
// asked for.
func measureLoop(j job, r *fleetResult, p peaks) metrics {
	m := common(r, p)
	var tput, cpu float64
	h := newHist()
	asked := make([]bool, j.Keys)
	perKey := make([]int32, j.Keys)
	for _, w := range r.reports {
		tput += float64(w.Calls) / (float64(w.Elapsed) / float64(time.Second))
		h.merge(w.Hist)
		cpu += float64(w.CPU)
		for k := range min(len(w.Requested), j.Keys) {
			asked[k] = asked[k] || w.Requested[k]
		}
		for k := range min(len(w.PerKey), j.Keys) {
			perKey[k] += w.PerKey[k]
		}
	}
	m["throughput"] = tput
	if m["calls"] > 0 {
		m["cpu"] = cpu / m["calls"] / float64(time.Microsecond)
	}
	m["p50"], m["p99"], m["max"] = ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.quantile(1))
	n := 0
	for _, a := range asked {
		if a {
			n++
		}
	}
	m["keys"] = float64(n)
	if n > 0 {
		m["per_key"] = m["computations"] / float64(n)
	}
	m["max_key"] = float64(slices.Max(append(perKey, 0)))
	return m
}

// measureMany measures one process missing many distinct keys at once.
func measureMany(j job, r *fleetResult, p peaks) metrics {
	m := common(r, p)
	for _, w := range r.reports {
		m["elapsed"] = ms(w.Elapsed)
		m["in_use"] = float64(w.PeakInUse)
		if j.Contender == "pgflight-tx" {
			// Transaction mode's documented default cap: min(16, max(2, MaxConns/2)).
			m["cap"] = float64(min(16, max(2, w.PoolMax/2)))
		}
	}
	return m
}

// common returns the numbers every scenario reports. "oom" counts the
// 'out of shared memory' errors (SQLSTATE 53200) seen: every call that
// failed with one, every distinct warning pgflight logged with one, and
// the sampler's. pgflight computes without the lock when the Locker fails,
// so a 53200 in pglock reaches only its log, which has at most one warning
// of a kind per 10 s: the count is a floor, and a 53200 that follows
// another failed lock within 10 s goes unseen; fail-opens count them all.
func common(r *fleetResult, p peaks) metrics {
	m := metrics{"conns": float64(p.conns), "locks_held": float64(p.locksHeld), "locks": float64(p.locks),
		"redis": float64(p.redisClients)}
	for _, w := range r.reports {
		m["calls"] += float64(w.Calls)
		m["errors"] += float64(w.Errors)
		m["computations"] += float64(w.Computations)
		m["fail_opens"] += float64(w.FailOpens)
		m["oom"] += float64(w.OOM)
		for _, s := range w.Warnings {
			if isOutOfSharedMemory(s) {
				m["oom"]++
			}
		}
	}
	if isOutOfSharedMemory(p.err) {
		m["oom"]++
	}
	return m
}

// isOutOfSharedMemory reports whether s is PostgreSQL's error for a full
// lock table.
func isOutOfSharedMemory(s string) bool {
	return strings.Contains(s, "out of shared memory") || strings.Contains(s, "53200")
}
