package main

import (
	"context"
	"fmt"
	"time"
)

// pairSlice is how long each contender's turn lasts when a pair runs in
// one fleet.
const pairSlice = 100 * time.Millisecond

// A pairRun is what one repetition of a pair measured: the metrics of
// each of its two contenders.
type pairRun [2]metrics

// pairName names a pair in the results and the report.
func pairName(p [2]string) string { return p[0] + "+" + p[1] }

// runPair runs the two contenders of p in one fleet that takes turns
// between them, and measures each.
func (s *suite) runPair(ctx context.Context, sc *scenario, p [2]string, rep int) (pairRun, error) {
	j := sc.job(s.o)
	j.Pair, j.Slice = p[:], pairSlice
	name := p[0] + "-" + p[1]
	j.Prefix = fmt.Sprintf("pgflight-bench.%s.%s.pair-%s.%d", s.runID, sc.name, name, rep)
	_, j.App = s.appName(sc.name, "pair-"+name, rep)
	j.DatabaseURL, j.RedisURL = s.o.databaseURL, s.o.redisURL
	j.Seed = uint64(rep)
	j.CPUProfile, j.PGPool, j.PGLockPool = s.o.cpuProfile, s.o.pgPool, s.o.pglockPool
	f := &fleet{exe: s.exe, procs: sc.procs, job: j, stderr: s.stderr}
	start := time.Now()
	res, err := f.run(ctx)
	s.deleteKeys(j.Prefix)
	if err != nil {
		return pairRun{}, err
	}
	var out pairRun
	for l := range 2 {
		lr := &fleetResult{}
		for _, w := range res.reports {
			if l < len(w.Lanes) {
				lr.reports = append(lr.reports, w.Lanes[l])
			}
		}
		out[l] = sc.measure(j, lr, peaks{})
		for _, w := range lr.reports {
			if w.Errors > 0 {
				s.note("%s/%s in turns with %s, repetition %d: %d of %d calls failed; first error: %s",
					sc.name, p[l], p[1-l], rep+1, w.Errors, w.Calls, w.FirstError)
				break
			}
		}
	}
	s.logf("[%s %d/%d] %s taking turns: %s calls/s vs %s calls/s: %s (%v)", sc.name, rep+1, sc.repetitions(s.o.runs), pairName(p),
		rate(out[1]["throughput"]), rate(out[0]["throughput"]), ratioText(out[1]["throughput"]/out[0]["throughput"]),
		time.Since(start).Round(10*time.Millisecond))
	return out, nil
}

// pairRatios returns, per repetition, the second contender's metric key
// divided by the first's.
func pairRatios(runs []pairRun, key string) []float64 {
	var rs []float64
	for _, r := range runs {
		if r[0] != nil && r[1] != nil && r[0][key] != 0 {
			rs = append(rs, r[1][key]/r[0][key])
		}
	}
	return rs
}
