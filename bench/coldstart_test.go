package main

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMeasureColdStart measures two made-up workers of a cold start of 4
// keys: computations per key over all keys, the fleet's wall time from the
// first release to the last worker's end, and the 53200s seen.
func TestMeasureColdStart(t *testing.T) {
	ms := int64(time.Millisecond)
	h := newHist()
	h.add(10 * ms)
	j := job{Work: workWalk, Keys: 4}
	r := &fleetResult{reports: []workerReport{
		{Calls: 4, Computations: 3, PerKey: []int32{1, 1, 1, 0}, Release: 1000 * ms, Elapsed: 400 * ms, Hist: h,
			FailOpens: 2, Warnings: []string{"pgflight: lock unavailable, computing without it: ERROR: out of shared memory (SQLSTATE 53200)"}},
		{Calls: 4, Errors: 1, OOM: 1, Computations: 2, PerKey: []int32{1, 0, 0, 1}, Release: 1100 * ms, Elapsed: 400 * ms, Hist: h},
	}}
	m := measureColdStart(j, r, peaks{conns: 3, err: "ERROR: out of shared memory (SQLSTATE 53200)"})
	for _, tc := range []struct {
		key  string
		want float64
	}{
		{"per_key", 5.0 / 4},
		{"max_key", 2},
		{"wall", 500},
		{"throughput", 7 / 0.5}, // 8 calls, 1 failed, in 500 ms
		{"errors", 1},
		{"fail_opens", 2},
		{"oom", 3}, // a call's error, a warning and the sampler's
		{"conns", 3},
	} {
		if got := m[tc.key]; math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", tc.key, got, tc.want)
		}
	}
	if p50 := m["p50"]; p50 < 10 || p50 > 11 {
		t.Errorf("p50 = %v ms, want 10 to 11", p50)
	}
}

// TestColdStartTargets checks the verdicts of issue 8's cold-start targets
// on made-up results.
func TestColdStartTargets(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pgflight metrics // coldstart-small and coldstart-large, with none at 1000 keys/s
		want     map[string]string
	}{
		{"met", metrics{"calls": 8000, "per_key": 1, "throughput": 960, "conns": 8, "errors": 0, "oom": 0},
			map[string]string{"1,000 keys, 50ms): 1.00": "yes", "throughput": "yes", "connections": "yes",
				"10,000 keys, 20ms): 1.00": "yes", "no errors": "yes"}},
		{"missed", metrics{"calls": 8000, "per_key": 1.44, "throughput": 940, "conns": 16, "errors": 0, "oom": 1},
			map[string]string{"1,000 keys, 50ms): 1.00": "**no**", "throughput": "**no**", "connections": "**no**",
				"10,000 keys, 20ms): 1.00": "**no**", "no errors": "**no**"}},
		{"rounded", metrics{"calls": 8000, "per_key": 1.004, "throughput": 950, "conns": 9, "errors": 1, "oom": 0},
			map[string]string{"1,000 keys, 50ms): 1.00": "yes", "throughput": "yes", "connections": "**no**",
				"10,000 keys, 20ms): 1.00": "yes", "no errors": "**no**"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(nil, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			s := &suite{o: o, runs: map[string]map[string][]metrics{}}
			for _, sc := range []string{"coldstart-small", "coldstart-large"} {
				s.runs[sc] = map[string][]metrics{
					"none":        {{"calls": 8000, "per_key": 1.4, "throughput": 1000}},
					"pgflight":    {tc.pgflight},
					"pgflight-tx": {{"calls": 8000, "per_key": 1.4, "throughput": 900, "conns": 16}},
				}
			}
			rows := s.targets()
			for part, want := range tc.want {
				i := slices.IndexFunc(rows, func(r targetRow) bool {
					return strings.HasPrefix(r.target, "cold start") && strings.Contains(r.target, part)
				})
				if i < 0 {
					t.Errorf("no cold-start target with %q", part)
					continue
				}
				if got := rows[i].verdict; got != want {
					t.Errorf("%q: met = %s, want %s (measured: %s)", rows[i].target, got, want, rows[i].measured)
				}
				if !strings.Contains(rows[i].measured, "transaction mode") {
					t.Errorf("%q: measured %q does not give transaction mode's", rows[i].target, rows[i].measured)
				}
			}
			for _, r := range rows {
				if strings.HasPrefix(r.target, "stampede") && r.verdict != "not run" {
					t.Errorf("%q: %s, want not run", r.target, r.verdict)
				}
			}
		})
	}
}

// TestSelectScenarios checks -scenarios: a group selects its scenarios,
// each once and in the order they run, and an unknown name fails.
func TestSelectScenarios(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"coldstart", []string{"coldstart-small", "coldstart-large"}},
		{"coldstart-large,stampede", []string{"coldstart-large", "stampede"}},
		{"coldstart-small,coldstart", []string{"coldstart-small", "coldstart-large"}},
	} {
		o, err := parseOptions([]string{"-scenarios", tc.arg}, io.Discard)
		if err != nil {
			t.Errorf("-scenarios %s: %v", tc.arg, err)
			continue
		}
		if !slices.Equal(o.scenarios, tc.want) {
			t.Errorf("-scenarios %s selects %v, want %v", tc.arg, o.scenarios, tc.want)
		}
	}
	if _, err := parseOptions([]string{"-scenarios", "stampede,coldstrat"}, io.Discard); err == nil || !strings.Contains(err.Error(), `"coldstrat"`) {
		t.Errorf("-scenarios stampede,coldstrat: error %v, want one naming coldstrat", err)
	}
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios(o) {
		if !slices.Contains(o.scenarios, sc.name) {
			t.Errorf("scenario %s does not run by default", sc.name)
		}
	}
}

// TestRepetitions checks that the large cold start runs at most 3 times,
// and that the report says so.
func TestRepetitions(t *testing.T) {
	s := fakeSuite(t)
	for _, sc := range scenarios(s.o) {
		want := 7
		if sc.name == "coldstart-large" {
			want = 3
		}
		if got := sc.repetitions(7); got != want {
			t.Errorf("%s: %d repetitions of 7, want %d", sc.name, got, want)
		}
		if got := sc.repetitions(2); got != 2 {
			t.Errorf("%s: %d repetitions of 2, want 2", sc.name, got)
		}
	}
	s.o.runs = 7
	var b bytes.Buffer
	s.report(&b)
	if !strings.Contains(b.String(), "**3 repetition(s)**, not 7") {
		t.Error("report does not say that the large cold start ran 3 times of 7")
	}
}

// TestQuickColdStart checks that -quick halves the cold starts' keys,
// unless they are set.
func TestQuickColdStart(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		small, large int
	}{
		{nil, 1000, 10_000},
		{[]string{"-quick"}, 500, 5000},
		{[]string{"-quick", "-cold-large-keys", "10000"}, 500, 10_000},
	} {
		o, err := parseOptions(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if o.coldSmall.keys != tc.small || o.coldLarge.keys != tc.large {
			t.Errorf("%v: keys %d and %d, want %d and %d", tc.args, o.coldSmall.keys, o.coldLarge.keys, tc.small, tc.large)
		}
	}
}
