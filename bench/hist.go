package main

import "math"

// A hist counts latencies in buckets that grow by 10%, from 1 µs to about
// 100 s, so that workers can report every call's latency in a few hundred
// numbers, and the parent can merge them.
type hist []int64

const (
	histBase    = 1.1
	histMinNS   = 1000
	histBuckets = 200 // 1 µs × 1.1^200 ≈ 190 s
)

func newHist() hist { return make(hist, histBuckets) }

// bucket returns the bucket of ns.
func bucket(ns int64) int {
	if ns <= histMinNS {
		return 0
	}
	b := int(math.Log(float64(ns)/histMinNS) / math.Log(histBase))
	return min(b+1, histBuckets-1)
}

// upper returns the upper bound of bucket b, in ns.
func upper(b int) int64 {
	return int64(histMinNS * math.Pow(histBase, float64(b)))
}

// add counts one latency.
func (h hist) add(ns int64) { h[bucket(ns)]++ }

// merge adds o's counts to h.
func (h hist) merge(o hist) {
	for i := range min(len(h), len(o)) {
		h[i] += o[i]
	}
}

// quantile returns the upper bound of the bucket holding the q-th quantile
// (0 < q <= 1), in ns: within 10% above the true value. It returns 0 for an
// empty hist.
func (h hist) quantile(q float64) int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for b, c := range h {
		seen += c
		if seen >= max(rank, 1) {
			return upper(b)
		}
	}
	return upper(len(h) - 1)
}
