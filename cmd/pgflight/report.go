package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// The demo's modes, in the order it runs them.
const (
	modeNone     = "none"     // cache-aside with no coordination at all
	modeLocal    = "local"    // pgflight with the in-process locker
	modePgflight = "pgflight" // pgflight with pglock on PostgreSQL
)

// A modeResult is what one mode of the demo measured, summed over its
// workers.
type modeResult struct {
	mode         string
	calls        int
	computations int64
	errors       int
	firstError   string
	failOpens    uint64
	latencies    []time.Duration // of every call, from the barrier's release
	peakConns    int             // peak PostgreSQL sessions; -1 if not measured
}

// add merges one worker's report into r.
func (r *modeResult) add(w workerReport) {
	r.calls += w.Calls
	r.computations += w.Computations
	r.errors += w.Errors
	if r.firstError == "" {
		r.firstError = w.FirstError
	}
	r.failOpens += w.FailOpens
	r.latencies = append(r.latencies, w.Latencies...)
}

// saved returns the percentage of calls that did not compute.
func (r *modeResult) saved() float64 {
	if r.calls == 0 {
		return 0
	}
	return 100 * float64(int64(r.calls)-r.computations) / float64(r.calls)
}

// percentile returns the p-th percentile (0 < p <= 1) of r's latencies by
// the nearest-rank method, or 0 if there are none.
func (r *modeResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	i := int(math.Ceil(p*float64(len(l)))) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// printTable writes one row per mode.
func printTable(w io.Writer, results []*modeResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tcalls\tcomputations\twork saved\tp50\tp99\tmax\tpeak PG conns\terrors")
	for _, r := range results {
		conns := "-"
		if r.peakConns >= 0 {
			conns = strconv.Itoa(r.peakConns)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%s\t%s\t%s\t%s\t%d\n",
			r.mode, r.calls, r.computations, r.saved(),
			ms(r.percentile(0.50)), ms(r.percentile(0.99)), ms(r.percentile(1)), conns, r.errors)
	}
	tw.Flush()
}

// printNotes writes what the table cannot show: the first error of each
// mode that had errors, and computations made without the cluster lock.
// Each line starts with prefix and the mode.
func printNotes(w io.Writer, prefix string, results []*modeResult) {
	for _, r := range results {
		if r.errors > 0 {
			fmt.Fprintf(w, "%s%s: %d calls failed; first error: %s\n", prefix, r.mode, r.errors, r.firstError)
		}
		if r.failOpens > 0 {
			fmt.Fprintf(w, "%s%s: %d flights computed without the PostgreSQL lock (fail-open; see the warnings on stderr)\n", prefix, r.mode, r.failOpens)
		}
	}
}

// conclusion sums the fleet comparison up in one line, from the numbers.
func conclusion(results []*modeResult, procs int) string {
	none, local, pgf := find(results, modeNone), find(results, modeLocal), find(results, modePgflight)
	if pgf == nil || none == nil || local == nil {
		return ""
	}
	p50, d := pgf.percentile(0.5), pgf.percentile(0.5)-local.percentile(0.5)
	rel := fmt.Sprintf("%.1f ms above", float64(d)/float64(time.Millisecond))
	if d < 0 {
		rel = fmt.Sprintf("%.1f ms below", float64(-d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("pgflight: %s for %d calls across %d processes (in-process coalescing: %d, no coordination: %d); p50 %s, %s in-process coalescing; %d PostgreSQL connections at peak.",
		plural(pgf.computations, "computation"), pgf.calls, procs, local.computations, none.computations,
		ms(p50), rel, pgf.peakConns)
}

// fallbackConclusion sums the one-process comparison up in one line.
func fallbackConclusion(results []*modeResult) string {
	none, pgf := find(results, modeNone), find(results, modePgflight)
	if pgf == nil || none == nil {
		return ""
	}
	return fmt.Sprintf("pgflight (embedded default): %s for %d calls in this one process, against %d with no coordination; across processes it needs PostgreSQL and a shared cache.",
		plural(pgf.computations, "computation"), pgf.calls, none.computations)
}

// find returns the result of mode, or nil.
func find(results []*modeResult, mode string) *modeResult {
	for _, r := range results {
		if r.mode == mode {
			return r
		}
	}
	return nil
}

// plural returns "1 computation" or "n computations".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
