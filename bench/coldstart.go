package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// A coldStart is the size of a cold start: every process of the fleet
// asks for each of keys keys once, on an empty cache, with goroutines
// goroutines sharing the walk; a computation takes compute.
type coldStart struct {
	goroutines, keys int
	compute          time.Duration
}

// The contenders of the cold starts. singleflight coalesces only the calls
// of one process, and in a cold start each process asks for a key once, so
// it runs only in the small one, where it is cheap, as a check on none.
var (
	coldSmallContenders = []string{"none", "recipe", "singleflight", "pgflight", "pgflight-tx"}
	coldLargeContenders = []string{"none", "recipe", "pgflight", "pgflight-tx"}
)

// job returns the job of a worker of the cold start.
func (c coldStart) job() job {
	return job{Work: workWalk, Goroutines: c.goroutines, Keys: c.keys, Compute: c.compute, TTL: 10 * time.Minute}
}

// title returns the title of the cold start's section in the report.
func (c coldStart) title() string {
	return fmt.Sprintf("Cold start, %s keys", rate(float64(c.keys)))
}

// runWalk is a cold start in one worker: it asks for every one of j.Keys
// keys once, in an order of its own (a permutation drawn from j.Seed and
// j.Index, so that the processes of a fleet walk the keys in different
// orders, and every contender of a repetition gets the same ones), its
// goroutines sharing the walk: each takes the next key of it as its last
// call returns. It records every call's latency and the computations of
// every key.
func runWalk(ctx context.Context, c contender, j job, cnt *counter) workerReport {
	order := rand.New(rand.NewPCG(j.Seed, uint64(j.Index))).Perm(j.Keys)
	var t tally
	var next atomic.Int64
	hists := make([]hist, j.Goroutines)
	t0 := together(j.Goroutines, func(i int, _ time.Time) {
		h := newHist()
		for n := next.Add(1) - 1; n < int64(len(order)); n = next.Add(1) - 1 {
			k := order[n]
			start := time.Now()
			_, err := c.get(ctx, keyName(k), cnt.fn(keyName(k), k))
			h.add(int64(time.Since(start)))
			t.add(err)
		}
		hists[i] = h
	})
	rep := t.report()
	rep.Elapsed, rep.Release = since(t0), t0.UnixNano()
	rep.Hist = newHist()
	for _, h := range hists {
		rep.Hist.merge(h)
	}
	rep.PerKey = make([]int32, j.Keys)
	for k := range cnt.perKey {
		rep.PerKey[k] = cnt.perKey[k].Load()
	}
	return rep
}

// measureColdStart measures a cold start: computations per key (every key
// is asked for), the fleet's wall time from the first worker's release
// until the last worker had every key, and its throughput over that time:
// the calls that returned a value (one per key and process), per second.
func measureColdStart(j job, r *fleetResult, p peaks) metrics {
	m := common(r, p)
	first, last := int64(math.MaxInt64), int64(0)
	perKey := make([]int32, j.Keys)
	h := newHist()
	for _, w := range r.reports {
		first, last = min(first, w.Release), max(last, w.Release+w.Elapsed)
		h.merge(w.Hist)
		for k := range min(len(w.PerKey), j.Keys) {
			perKey[k] += w.PerKey[k]
		}
	}
	if last > first {
		m["wall"] = ms(last - first)
		m["throughput"] = (m["calls"] - m["errors"]) / (float64(last-first) / float64(time.Second))
	}
	if j.Keys > 0 {
		m["per_key"] = m["computations"] / float64(j.Keys)
	}
	m["max_key"] = float64(slices.Max(append(perKey, 0)))
	m["p50"], m["p99"], m["max"] = ms(h.quantile(0.5)), ms(h.quantile(0.99)), ms(h.quantile(1))
	return m
}
