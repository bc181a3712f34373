package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

// TestCheckAnalysis checks the analysis on a log written by hand: writes
// logged out of version order, reads before, between and after commits,
// a read that missed two versions, and versions served that no writer
// wrote or before their transaction began.
func TestCheckAnalysis(t *testing.T) {
	ms := int64(time.Millisecond)
	rep := &checkReport{}
	a := newAnalysis(2, 5*time.Millisecond, rep)
	// Row 0: version 1 committed at 10 ms, 2 at 20 ms, 3 at 21 ms but
	// logged before 2; row 1 is never written.
	a.logWrite(write{Row: 0, Version: 1, Begin: 9 * ms, Commit: 10 * ms})
	a.logWrite(write{Row: 0, Version: 3, Begin: 20 * ms, Commit: 21 * ms})
	a.logWrite(write{Row: 0, Version: 2, Begin: 19 * ms, Commit: 20 * ms})
	a.mark = 100 * ms
	for _, rd := range []read{
		{row: 0, version: 0, start: 5 * ms, end: 6 * ms},   // before any commit: fine
		{row: 0, version: 0, start: 10 * ms, end: 11 * ms}, // began as version 1's COMMIT returned: not after it
		{row: 0, version: 0, start: 12 * ms, end: 13 * ms}, // missed version 1 by 2 ms
		{row: 0, version: 1, start: 15 * ms, end: 16 * ms}, // current
		{row: 0, version: 1, start: 30 * ms, end: 31 * ms}, // missed 2 and 3: lag 9 ms (3), stale 10 ms (2)
		{row: 0, version: 3, start: 30 * ms, end: 31 * ms}, // current
		{row: 1, version: 0, start: 30 * ms, end: 31 * ms}, // never written: current
	} {
		if !a.ready(rd) {
			t.Fatalf("read %+v not ready at mark %d", rd, a.mark)
		}
		a.check(rd)
	}
	if rep.Reads != 7 || rep.Violations != 2 || rep.Beyond != 1 {
		t.Errorf("reads, violations, beyond = %d, %d, %d, want 7, 2, 1", rep.Reads, rep.Violations, rep.Beyond)
	}
	if rep.MaxLag != 9*ms || rep.MaxStale != 10*ms {
		t.Errorf("max lag, max stale = %v, %v, want 9ms, 10ms", time.Duration(rep.MaxLag), time.Duration(rep.MaxStale))
	}
	if got := rep.Lag.quantile(0.01); got < 2*ms || got > 2*ms*11/10 {
		t.Errorf("smallest lag = %v, want 2ms (within 10%%)", time.Duration(got))
	}
	a.finish()
	if rep.Corrupt != 0 || rep.Acausal != 0 {
		t.Fatalf("corrupt, acausal = %d, %d, want 0, 0", rep.Corrupt, rep.Acausal)
	}
	a.check(read{row: 0, version: 4, start: 40 * ms, end: 41 * ms})  // never written
	a.check(read{row: 0, version: 3, start: 5 * ms, end: 6 * ms})    // returned before version 3's transaction began
	a.check(read{row: 0, version: -1, start: 40 * ms, end: 41 * ms}) // not a number
	a.finish()
	if rep.Corrupt != 2 || rep.Acausal != 1 {
		t.Errorf("corrupt, acausal = %d, %d, want 2, 1", rep.Corrupt, rep.Acausal)
	}
	if last := a.last(0); last != 3 {
		t.Errorf("last version of row 0 = %d, want 3", last)
	}
}

// TestCheckReady checks that a read waits for a watermark past its start.
func TestCheckReady(t *testing.T) {
	a := newAnalysis(1, time.Millisecond, &checkReport{})
	rd := read{start: 10, end: 11}
	if a.ready(rd) {
		t.Error("ready before any watermark")
	}
	if a.mark = 10; a.ready(rd) {
		t.Error("ready at a watermark equal to its start")
	}
	if a.mark = 11; !a.ready(rd) {
		t.Error("not ready at a watermark past its start")
	}
}

// TestCheckerSection renders the report section from results made by hand
// and checks its verdicts and its settings.
func TestCheckerSection(t *testing.T) {
	o, err := parseOptions([]string{"-checker", "-checker-duration", "2s", "-checker-bound", "50ms", "-checker-out", "x.md"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.check.enabled || o.check.duration != 2*time.Second || o.check.rows != 50 || o.check.readers != 4 || len(o.check.configs) != 2 {
		t.Fatalf("checker options = %+v", o.check)
	}
	if o.command != "cd bench && go run . -checker -checker-duration 2s -checker-bound 50ms" {
		t.Errorf("command = %q", o.command)
	}
	clean := checkReport{Reads: 1000, Lag: newHist(), Stale: newHist(), Latency: newHist(), Stats: &pgflight.Stats{}}
	stale := clean
	stale.Violations, stale.Lag, stale.MaxLag = 3, newHist(), int64(2*time.Millisecond)
	stale.Lag.add(int64(2 * time.Millisecond))
	r := &checkSection{o: o, configs: []string{"shared", "local"}, loadBefore: "0", loadAfter: "0",
		results: []*checkResult{{Duration: 2 * time.Second, Sum: clean}, {Duration: 2 * time.Second, Sum: stale}}}
	var b bytes.Buffer
	r.write(&b)
	out := b.String()
	for _, want := range []string{"| Redis + pglock | 0 | 1,000 | 500 | 0 | 0.00% |", "3 of 1,000 reads (0.30%)", "superseded for > 50ms", "| **no** |", "| yes |"} {
		if !strings.Contains(out, want) {
			t.Errorf("section lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "%!") {
		t.Errorf("section has a formatting error:\n%s", out)
	}
}
