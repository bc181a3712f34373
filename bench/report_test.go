package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

// fakeSuite returns a suite holding made-up results for every scenario.
func fakeSuite(t *testing.T) *suite {
	t.Helper()
	o, err := parseOptions([]string{"-runs", "2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := &suite{o: o, runs: map[string]map[string][]metrics{}, pairs: map[string]map[string][]pairRun{}, took: time.Minute, stderr: io.Discard,
		machine: machine{Cores: 2, CPU: "test CPU", Floors: []floor{{"Redis GET (hit)", 1, 60 * time.Microsecond}}}}
	for _, sc := range scenarios(o) {
		s.runs[sc.name] = map[string][]metrics{}
		for i, name := range s.contendersOf(sc) {
			for rep := range 2 {
				m := metrics{"calls": 800, "computations": 1, "p50": 100 + float64(i), "max": 110 + float64(i+rep),
					"recovery": 110, "throughput": 1000 * float64(i+1), "per_key": 1, "max_wave": 1, "cap": 2, "locks": 2}
				if name == "redsync" {
					m["recovery"], m["errors"] = math.Inf(1), 700
				}
				s.runs[sc.name][name] = append(s.runs[sc.name][name], m)
			}
		}
	}
	s.pairs = map[string]map[string][]pairRun{"hits": {
		"none+pgflight": {{{"throughput": 100}, {"throughput": 97}}, {{"throughput": 100}, {"throughput": 99}}},
		"none+none":     {{{"throughput": 100}, {"throughput": 101}}},
	}}
	s.note("a note")
	return s
}

// TestReport writes the report and the chart of made-up results: every
// scenario has its table, and the chart is well-formed XML.
func TestReport(t *testing.T) {
	s := fakeSuite(t)
	var b bytes.Buffer
	s.report(&b)
	md := b.String()
	for _, want := range []string{"## Targets", "## Stampede", "## Crash", "## Expiry", "## Expiry with stale", "| pgflight-stale |", "expiry with stale (StaleTTL 2s)", "## Zipf", "## Hits", "## Cold start, 1,000 keys", "## Cold start, 10,000 keys", "## Manykeys",
		"| pgflight |", "| pgflight (transaction mode) |", "pgflight vs sturdyc, caller p50", "a note", "0.98x taking turns in one fleet", "cd bench && go run . -runs 2"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	var svg bytes.Buffer
	s.chart(&svg)
	if !strings.Contains(svg.String(), "never") {
		t.Error("chart does not show redsync's crash as never")
	}
	d := xml.NewDecoder(&svg)
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed: %v", err)
		}
	}
}

// TestHist checks that quantiles land within a bucket of the truth.
func TestHist(t *testing.T) {
	h := newHist()
	for i := 1; i <= 1000; i++ {
		h.add(int64(i) * int64(time.Microsecond))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := time.Duration(h.quantile(tc.q))
		if got < tc.want || float64(got) > float64(tc.want)*histBase*1.001 {
			t.Errorf("quantile(%v) = %v, want %v to %v", tc.q, got, tc.want, time.Duration(float64(tc.want)*histBase))
		}
	}
}

// TestMedian covers odd and even counts and +Inf.
func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, math.Inf(1), math.Inf(1)}, math.Inf(1)},
		{[]float64{1, 2, math.Inf(1), math.Inf(1)}, math.Inf(1)},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

// TestSaveRender saves made-up results and renders the same report from
// them.
func TestSaveRender(t *testing.T) {
	s := fakeSuite(t)
	s.o.args = []string{"-runs", "2"}
	s.runs["crash"]["none"][1] = nil // a failed run
	path := t.TempDir() + "/results.gob"
	if err := s.save(path); err != nil {
		t.Fatal(err)
	}
	l, err := loadSuite(path, s.o)
	if err != nil {
		t.Fatal(err)
	}
	l.stderr = io.Discard
	var a, b bytes.Buffer
	s.report(&a)
	l.report(&b)
	if a.String() != b.String() {
		t.Errorf("rendered report differs from the original:\n%s\n---\n%s", b.String(), a.String())
	}
}

// TestRunOrder checks that every contender runs once per repetition, and
// pgflight next to none.
func TestRunOrder(t *testing.T) {
	names := []string{"none", "recipe", "singleflight", "sturdyc", "redsync", "pgflight"}
	for rep := range 8 {
		order := runOrder(names, rep)
		if len(order) != len(names) {
			t.Fatalf("rep %d: order %v, want each of %v once", rep, order, names)
		}
		i, j := slices.Index(order, "none"), slices.Index(order, "pgflight")
		if d := j - i; (rep%2 == 0 && d != 1) || (rep%2 == 1 && d != -1) {
			t.Errorf("rep %d: order %v, want pgflight %s none", rep, order, map[bool]string{true: "after", false: "before"}[rep%2 == 0])
		}
	}
	if got := runOrder([]string{"pgflight"}, 1); len(got) != 1 {
		t.Errorf("runOrder(pgflight) = %v", got)
	}
	stale := []string{"pgflight", "pgflight-stale", "pgflight-xfetch"}
	for rep, want := range [][]string{stale, {"pgflight-stale", "pgflight-xfetch", "pgflight"}} {
		if got := runOrder(stale, rep); !slices.Equal(got, want) {
			t.Errorf("runOrder(%v, %d) = %v, want %v", stale, rep, got, want)
		}
	}
}

// TestNear checks which calls count as around a recomputation.
func TestNear(t *testing.T) {
	starts := []int64{100, 200}
	for _, tc := range []struct {
		t    int64
		want bool
	}{{85, false}, {90, true}, {100, true}, {110, true}, {111, false}, {195, true}, {211, false}} {
		if got := near(starts, tc.t, 10); got != tc.want {
			t.Errorf("near(%v, %d, 10) = %v, want %v", starts, tc.t, got, tc.want)
		}
	}
}

// TestContendersOf checks that the variants run only where named.
func TestContendersOf(t *testing.T) {
	s := fakeSuite(t)
	for _, sc := range scenarios(s.o) {
		got := s.contendersOf(sc)
		switch sc.name {
		case "expiry-stale":
			if want := []string{"pgflight", "pgflight-stale", "pgflight-xfetch"}; !slices.Equal(got, want) {
				t.Errorf("%s: contenders %v, want %v", sc.name, got, want)
			}
		case "coldstart-small", "coldstart-large", "manykeys":
			if !slices.Contains(got, "pgflight-tx") || slices.Contains(got, "pgflight-stale") || slices.Contains(got, "pgflight-xfetch") {
				t.Errorf("%s: contenders %v, want pgflight-tx and no other variant", sc.name, got)
			}
		case "stampede", "crash", "zipf":
			if want := []string{"none", "recipe", "singleflight", "sturdyc", "redsync", "pgflight", "pgflight-tx"}; !slices.Equal(got, want) {
				t.Errorf("%s: contenders %v, want %v", sc.name, got, want)
			}
		default:
			if slices.Contains(got, "pgflight-stale") || slices.Contains(got, "pgflight-xfetch") || slices.Contains(got, "pgflight-tx") {
				t.Errorf("%s: contenders %v include a variant", sc.name, got)
			}
		}
	}
	s.o.contenders = []string{"sturdyc", "pgflight-tx"}
	for _, sc := range scenarios(s.o) {
		if sc.name == "stampede" {
			if got, want := s.contendersOf(sc), []string{"sturdyc", "pgflight-tx"}; !slices.Equal(got, want) {
				t.Errorf("-contenders sturdyc,pgflight-tx: stampede runs %v, want %v", got, want)
			}
		}
	}
}

// TestAddStats checks that the counters are summed and subtracted field by
// field.
func TestAddStats(t *testing.T) {
	a := pgflight.Stats{Hits: 5, Misses: 2, LockWait: time.Second, StaleHits: 3}
	b := pgflight.Stats{Hits: 1, Misses: 2, LockWait: time.Millisecond, StaleHits: 1}
	if got, want := addStats(a, b, -1), (pgflight.Stats{Hits: 4, LockWait: 999 * time.Millisecond, StaleHits: 2}); got != want {
		t.Errorf("a − b = %+v, want %+v", got, want)
	}
	if got, want := addStats(a, b, 1), (pgflight.Stats{Hits: 6, Misses: 4, LockWait: 1001 * time.Millisecond, StaleHits: 4}); got != want {
		t.Errorf("a + b = %+v, want %+v", got, want)
	}
}

// TestTurnTime checks how a run is shared between the lanes of a pair.
func TestTurnTime(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		l, n     int
		slice, d time.Duration
		want     time.Duration
	}{
		{0, 2, 100 * ms, 1500 * ms, 800 * ms},
		{1, 2, 100 * ms, 1500 * ms, 700 * ms},
		{0, 2, 100 * ms, 1450 * ms, 750 * ms},
		{1, 2, 100 * ms, 1450 * ms, 700 * ms},
		{0, 1, 100 * ms, 1450 * ms, 1450 * ms},
	} {
		if got := time.Duration(turnTime(tc.l, tc.n, tc.slice, tc.d)); got != tc.want {
			t.Errorf("turnTime(%d, %d, %v, %v) = %v, want %v", tc.l, tc.n, tc.slice, tc.d, got, tc.want)
		}
	}
}
