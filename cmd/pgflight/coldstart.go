package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The demo's second table is a cold start: many keys that every process
// wants at about the same moment, as after a deploy or a cache flush. Each
// process asks for each key once, its goroutines sharing the walk in an
// order of the process's own, so in-process coalescing has nothing to
// coalesce and only coordination across processes saves work.

// coldKey returns the name of key i of the cold start.
func coldKey(i int) string { return "cold:" + strconv.Itoa(i) }

// walkTogether starts n goroutines, waits for barrier to return, then lets
// them walk keys keys together in a random order: each takes the next key
// of the walk when its last call returns, and calls call for it. It
// returns each call's latency, measured from its own start, and error. If
// barrier fails, no call runs.
func walkTogether(n, keys int, barrier func() error, call func(key string) error) ([]time.Duration, []error, error) {
	order := rand.Perm(keys)
	lat := make([]time.Duration, keys)
	errs := make([]error, keys)
	start := make(chan struct{})
	released := false // written before start closes, read after
	var next atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			if !released {
				return
			}
			for i := int(next.Add(1) - 1); i < keys; i = int(next.Add(1) - 1) {
				t0 := time.Now()
				errs[i] = call(coldKey(order[i]))
				lat[i] = time.Since(t0)
			}
		})
	}
	err := barrier()
	released = err == nil
	close(start)
	wg.Wait()
	return lat, errs, err
}

// printColdTable writes the cold start's table: one row per mode.
func printColdTable(w io.Writer, results []*modeResult, keys int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tcalls\tcomputations\tper key\twork saved\tp50\tp99\tpeak PG conns\terrors\tfail-opens")
	for _, r := range results {
		conns := "-"
		if r.peakConns >= 0 {
			conns = strconv.Itoa(r.peakConns)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.1f%%\t%s\t%s\t%s\t%d\t%d\n",
			r.mode, r.calls, r.computations, perKey(r, keys), r.saved(),
			ms(r.percentile(0.50)), ms(r.percentile(0.99)), conns, r.errors, r.failOpens)
	}
	tw.Flush()
}

// perKey returns r's computations per key of a cold start of keys keys.
func perKey(r *modeResult, keys int) float64 {
	if keys == 0 {
		return 0
	}
	return float64(r.computations) / float64(keys)
}

// coldConclusion sums the cold start up in one line, from the numbers.
func coldConclusion(results []*modeResult, keys int) string {
	none, local, pgf := find(results, modeNone), find(results, modeLocal), find(results, modePgflight)
	if pgf == nil || none == nil || local == nil {
		return ""
	}
	s := fmt.Sprintf("cold start: pgflight computed each key %.2f times (%d computations for %d keys; in-process coalescing: %.2f, no coordination: %.2f); %d PostgreSQL connections at peak",
		perKey(pgf, keys), pgf.computations, keys, perKey(local, keys), perKey(none, keys), pgf.peakConns)
	if pgf.failOpens > 0 {
		s += fmt.Sprintf("; %d flights failed open", pgf.failOpens)
	}
	return s + "."
}
