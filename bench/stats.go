package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 1) of sorted by the
// nearest-rank method, or 0 if it is empty.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }

// median returns the median of xs (the mean of the middle two for an even
// count), or NaN if xs is empty. +Inf counts as larger than any number.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	if math.IsInf(s[n/2], 1) {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// column returns metric key of every run in runs.
func column(runs []metrics, key string) []float64 {
	xs := make([]float64, 0, len(runs))
	for _, m := range runs {
		if v, ok := m[key]; ok {
			xs = append(xs, v)
		}
	}
	return xs
}

// ratios returns, for each repetition in which both ran, a's metric key
// divided by b's.
func ratios(a, b []metrics, key string) []float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if a[i] == nil || b[i] == nil {
			continue // a run that failed
		}
		x, y := a[i][key], b[i][key]
		if y != 0 && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
			rs = append(rs, x/y)
		}
	}
	return rs
}
