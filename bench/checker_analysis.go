package main

import (
	"math"
	"slices"
	"time"

	"github.com/pgflight/pgflight"
)

// A read is one Fetch by a reader goroutine: the version of row it was
// served, and when the call began and returned (Unix times in ns, on the
// wall clock, which every process of the host shares).
type read struct {
	row        int32
	version    int64
	start, end int64
}

// A checkReport is what a reader reports on stdout, as one JSON line, or
// the sum of several readers' reports. Times are in ns.
type checkReport struct {
	PID        int    `json:"pid,omitempty"`
	Reads      int64  `json:"reads"`  // reads checked
	Errors     int64  `json:"errors"` // Fetches that failed (not checked)
	FirstError string `json:"first_error,omitempty"`
	// Violations are the strict violations: reads that began after the
	// COMMIT of a newer version of their row had returned, and were served
	// an older one.
	Violations int64 `json:"violations"`
	// Lag holds, per violation, its start minus the Commit of the newest
	// version it missed; Stale its start minus the earliest Commit of a
	// version newer than the one served: how long the value served had
	// been superseded. They differ only for a read that missed several.
	Lag      hist  `json:"lag,omitempty"`
	Stale    hist  `json:"stale,omitempty"`
	MaxLag   int64 `json:"max_lag_ns"`
	MaxStale int64 `json:"max_stale_ns"`
	// Beyond counts the violations whose Stale exceeds the job's Bound.
	Beyond int64 `json:"beyond"`
	// Backwards counts the reads served an older version of their row than
	// the same goroutine had been served before.
	Backwards int64 `json:"backwards"`
	// Corrupt counts what no writer wrote: the reads served a value that is
	// not a version number, and the versions of a row served that were
	// never written.
	Corrupt int64 `json:"corrupt"`
	// Acausal counts the versions served by a read that returned before
	// the transaction that wrote them began: impossible unless the clocks
	// or the log are wrong.
	Acausal int64 `json:"acausal"`
	// Unconverged counts the rows whose last version the reader was still
	// not served convergeTimeout after the writers stopped.
	Unconverged int             `json:"unconverged"`
	Latency     hist            `json:"latency,omitempty"` // of the reads checked
	Elapsed     int64           `json:"elapsed_ns"`        // of the reads, from the release
	Stats       *pgflight.Stats `json:"stats,omitempty"`   // the Group's, after the reads
	Warnings    []string        `json:"warnings,omitempty"`
}

// merge adds o to r.
func (r *checkReport) merge(o checkReport) {
	r.Reads += o.Reads
	r.Errors += o.Errors
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	r.Violations += o.Violations
	for _, h := range []struct {
		to   *hist
		from hist
	}{{&r.Lag, o.Lag}, {&r.Stale, o.Stale}, {&r.Latency, o.Latency}} {
		if *h.to == nil {
			*h.to = newHist()
		}
		h.to.merge(h.from)
	}
	r.MaxLag, r.MaxStale = max(r.MaxLag, o.MaxLag), max(r.MaxStale, o.MaxStale)
	r.Beyond += o.Beyond
	r.Backwards += o.Backwards
	r.Corrupt += o.Corrupt
	r.Acausal += o.Acausal
	r.Unconverged += o.Unconverged
	r.Elapsed = max(r.Elapsed, o.Elapsed)
	if o.Stats != nil {
		if r.Stats == nil {
			r.Stats = &pgflight.Stats{}
		}
		*r.Stats = addStats(*r.Stats, *o.Stats, 1)
	}
	for _, w := range o.Warnings {
		if !slices.Contains(r.Warnings, w) {
			r.Warnings = append(r.Warnings, w)
		}
	}
}

// unknown marks a version whose write is not in the log (yet).
const unknown = math.MaxInt64

// A versionLog is what a reader knows of one row's writes, by version.
// Version 0 is the row as created, before any read.
type versionLog struct {
	commit []int64 // Commit of each version; unknown if not logged yet
	begin  []int64 // Begin of each version's transaction; unknown likewise
	// sufmin[v] is the earliest Commit of version v or later, of those
	// logged: a write not logged yet has a later Commit than the
	// watermark, so for a read that began before it, sufmin[v+1] < start
	// says exactly whether a version newer than v had been committed.
	sufmin []int64
	minEnd []int64 // per version, the earliest end of a read served it; unknown if none
}

// An analysis checks one reader's reads against the writers' log. It is
// not safe for concurrent use: the reader's analyzer goroutine owns it.
type analysis struct {
	rows  []versionLog
	mark  int64 // every write with an earlier Commit is logged
	bound int64
	rep   *checkReport
}

func newAnalysis(rows int, bound time.Duration, rep *checkReport) *analysis {
	a := &analysis{rows: make([]versionLog, rows), mark: math.MinInt64, bound: int64(bound), rep: rep}
	for i := range a.rows {
		l := &a.rows[i]
		l.commit, l.begin, l.sufmin = []int64{math.MinInt64}, []int64{math.MinInt64}, []int64{math.MinInt64}
	}
	rep.Lag, rep.Stale = newHist(), newHist()
	return a
}

// grow extends s with unknown to hold index i.
func grow(s []int64, i int64) []int64 {
	for int64(len(s)) <= i {
		s = append(s, unknown)
	}
	return s
}

// logWrite adds w to the log. Writes of a row may come out of version
// order (two writers log in the order their COMMITs returned).
func (a *analysis) logWrite(w write) {
	if w.Row < 0 || w.Row >= len(a.rows) || w.Version < 1 {
		return // the parent checks its log; nothing to learn here
	}
	l := &a.rows[w.Row]
	l.commit, l.begin, l.sufmin = grow(l.commit, w.Version), grow(l.begin, w.Version), grow(l.sufmin, w.Version)
	l.commit[w.Version], l.begin[w.Version] = w.Commit, w.Begin
	// sufmin is non-decreasing, so the entries it lowers are a run ending
	// at w.Version; version 0's is the floor.
	for v := w.Version; l.sufmin[v] > w.Commit; v-- {
		l.sufmin[v] = w.Commit
	}
}

// ready reports whether rd can be checked: the log is complete up to its
// start.
func (a *analysis) ready(rd read) bool { return rd.start < a.mark }

// check checks rd, which must be ready.
func (a *analysis) check(rd read) {
	r := a.rep
	r.Reads++
	if rd.version < 0 {
		r.Corrupt++
		return
	}
	l := &a.rows[rd.row]
	l.minEnd = grow(l.minEnd, rd.version)
	l.minEnd[rd.version] = min(l.minEnd[rd.version], rd.end)
	next := rd.version + 1
	if next >= int64(len(l.sufmin)) || l.sufmin[next] >= rd.start {
		return
	}
	r.Violations++
	stale := rd.start - l.sufmin[next]
	w := int64(len(l.commit)) - 1 // the newest version committed before the start: one newer than served exists
	for l.commit[w] >= rd.start {
		w--
	}
	lag := rd.start - l.commit[w]
	r.Lag.add(lag)
	r.Stale.add(stale)
	r.MaxLag, r.MaxStale = max(r.MaxLag, lag), max(r.MaxStale, stale)
	if stale > a.bound {
		r.Beyond++
	}
}

// finish checks, once the log is complete, every version served: one that
// no writer wrote is corrupt, one whose transaction began after the read
// returned is acausal.
func (a *analysis) finish() {
	for i := range a.rows {
		l := &a.rows[i]
		for v, end := range l.minEnd {
			switch {
			case end == unknown:
			case v >= len(l.commit) || l.commit[v] == unknown:
				a.rep.Corrupt++
			case v > 0 && l.begin[v] >= end:
				a.rep.Acausal++
			}
		}
	}
}

// last returns the last version of row in the log.
func (a *analysis) last(row int) int64 { return int64(len(a.rows[row].commit)) - 1 }
