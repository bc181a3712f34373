package main

import (
	"math"
	"testing"
	"time"
)

// TestStampede runs the stampede in 2 processes of 5 goroutines each:
// every call gets a value, and pgflight computes once for the fleet.
func TestStampede(t *testing.T) {
	for _, tc := range []struct {
		contender  string
		maxCompute float64
	}{
		{"none", 10},
		{"pgflight", 1},
	} {
		t.Run(tc.contender, func(t *testing.T) {
			j := job{Work: workOnce, Contender: tc.contender, Goroutines: 5, Compute: 20 * time.Millisecond, TTL: time.Minute}
			res := runFleet(t, j, 2, false)
			m := measureOnce(j, res, peaks{})
			if m["calls"] != 10 || m["errors"] != 0 {
				t.Fatalf("calls, errors = %v, %v; want 10, 0; reports: %+v", m["calls"], m["errors"], res.reports)
			}
			if c := m["computations"]; c < 1 || c > tc.maxCompute {
				t.Errorf("computations = %v, want 1 to %v", c, tc.maxCompute)
			}
			if m["p50"] < 20 {
				t.Errorf("p50 = %v ms, want at least the 20 ms computation", m["p50"])
			}
		})
	}
}

// TestCrash kills the process that computes, half-way through: pgflight's
// survivors take over, compute once more and every one gets a value.
func TestCrash(t *testing.T) {
	j := job{Work: workOnce, Contender: "pgflight", Goroutines: 3, Compute: 200 * time.Millisecond,
		TTL: time.Minute, Announce: true}
	res := runFleet(t, j, 3, true)
	if res.killed == 0 || len(res.reports) != 2 {
		t.Fatalf("killed pid %d, %d reports; want a kill and 2 survivors", res.killed, len(res.reports))
	}
	m := measureCrash(j, res, peaks{})
	if m["calls"] != 6 || m["errors"] != 0 || m["computations"] != 1 {
		t.Errorf("survivors: calls, errors, computations = %v, %v, %v; want 6, 0, 1", m["calls"], m["errors"], m["computations"])
	}
	// The kill comes 100 ms into the first computation; the survivors need
	// at least a second one.
	if r := m["recovery"]; math.IsInf(r, 0) || r < 200 {
		t.Errorf("recovery = %v ms, want at least 200", r)
	}
}

// TestLoop runs a short zipf loop: the report covers the keys asked for
// and every worker's calls.
func TestLoop(t *testing.T) {
	j := job{Work: workLoop, Contender: "pgflight", Goroutines: 2, Compute: time.Millisecond, TTL: time.Minute,
		Duration: 300 * time.Millisecond, Keys: 50, Zipf: 1.1}
	res := runFleet(t, j, 2, false)
	m := measureLoop(j, res, peaks{})
	if m["errors"] != 0 || m["calls"] == 0 || m["keys"] == 0 {
		t.Fatalf("errors, calls, keys = %v, %v, %v; want 0 errors, some calls and keys", m["errors"], m["calls"], m["keys"])
	}
	if m["computations"] < m["keys"] {
		t.Errorf("computations = %v, fewer than the %v keys asked for", m["computations"], m["keys"])
	}
}

// TestExpiryStale runs a short expiry-stale loop: served stale, pgflight's
// callers never wait for a computation while the fleet refreshes the key
// about once per TTL period, with no duplicate; without a stale window,
// every process waits at every expiry.
func TestExpiryStale(t *testing.T) {
	for _, tc := range []struct {
		contender string
		stale     bool
	}{
		{"pgflight", false},
		{"pgflight-stale", true},
	} {
		t.Run(tc.contender, func(t *testing.T) {
			j := job{Work: workLoop, Contender: tc.contender, Goroutines: 4, Compute: 10 * time.Millisecond,
				TTL: 100 * time.Millisecond, Duration: 600 * time.Millisecond, Keys: 1, Warm: true, Times: true,
				StaleTTL: 5 * time.Second, Calls: true}
			res := runFleet(t, j, 2, false)
			m := measureStale(j, res, peaks{})
			if m["errors"] != 0 || m["calls"] == 0 || m["computations"] == 0 {
				t.Fatalf("errors, calls, computations = %v, %v, %v; want 0 errors, some calls and computations",
					m["errors"], m["calls"], m["computations"])
			}
			if m["rc_calls"] == 0 {
				t.Error("no call around a recomputation")
			}
			if m["dups"] != 0 {
				t.Errorf("duplicates = %v, want 0", m["dups"])
			}
			if pp := m["per_period"]; pp > 1.5 {
				t.Errorf("computations per TTL period = %.2f, want at most 1.5", pp)
			}
			if !tc.stale {
				if m["waits"] == 0 || m["stale_hits"] != 0 {
					t.Errorf("flights that waited, stale hits = %v, %v; want some, 0", m["waits"], m["stale_hits"])
				}
				return
			}
			if m["waits"] != 0 || m["stale_hits"] == 0 || m["refreshes"] == 0 {
				t.Errorf("flights that waited, stale hits, refreshes = %v, %v, %v; want 0, some, some",
					m["waits"], m["stale_hits"], m["refreshes"])
			}
		})
	}
}

// TestColdStart runs a small cold start: every process asks for every key
// once, and pgflight computes each key at least once.
func TestColdStart(t *testing.T) {
	for _, contender := range []string{"none", "pgflight", "pgflight-tx"} {
		t.Run(contender, func(t *testing.T) {
			j := job{Work: workWalk, Contender: contender, Goroutines: 3, Keys: 20, Compute: time.Millisecond, TTL: time.Minute}
			res := runFleet(t, j, 2, false)
			m := measureColdStart(j, res, peaks{})
			if m["calls"] != 40 || m["errors"] != 0 {
				t.Fatalf("calls, errors = %v, %v; want 40, 0; reports: %+v", m["calls"], m["errors"], res.reports)
			}
			for _, w := range res.reports {
				if w.Calls != 20 {
					t.Errorf("worker %d: %d calls, want one per key, 20", w.PID, w.Calls)
				}
			}
			if m["computations"] < 20 || m["per_key"] < 1 || m["max_key"] < 1 {
				t.Errorf("computations, per key, most for one key = %v, %v, %v; want at least 20, 1, 1",
					m["computations"], m["per_key"], m["max_key"])
			}
			if m["wall"] <= 0 || m["throughput"] <= 0 {
				t.Errorf("wall, throughput = %v ms, %v/s; want both positive", m["wall"], m["throughput"])
			}
		})
	}
}

// TestLoopPair runs none and pgflight taking turns in one fleet, as they
// are and tuned (a deadline on every call, a client with
// ContextTimeoutEnabled): each lane has calls of its own and no errors.
func TestLoopPair(t *testing.T) {
	for _, pair := range [][]string{{"none", "pgflight"}, {"none-deadline", "pgflight-deadline"}} {
		t.Run(pair[0]+"+"+pair[1], func(t *testing.T) {
			j := job{Work: workLoop, Pair: pair, Slice: 50 * time.Millisecond, Goroutines: 2,
				Compute: time.Millisecond, TTL: time.Minute, Duration: 300 * time.Millisecond, Keys: 20}
			res := runFleet(t, j, 2, false)
			for _, w := range res.reports {
				if len(w.Lanes) != 2 {
					t.Fatalf("worker %d: %d lanes, want 2", w.PID, len(w.Lanes))
				}
				for l, lr := range w.Lanes {
					if lr.Calls == 0 || lr.Errors != 0 {
						t.Errorf("worker %d, %s: calls, errors = %d, %d; want some, 0 (first error: %s)", w.PID, j.Pair[l], lr.Calls, lr.Errors, lr.FirstError)
					}
				}
				if st := w.Lanes[1].Stats; st == nil || st.Hits == 0 {
					t.Errorf("worker %d, %s: Stats = %+v, want some hits", w.PID, j.Pair[1], st)
				}
			}
		})
	}
}
