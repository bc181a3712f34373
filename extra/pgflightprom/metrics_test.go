package pgflightprom_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/extra/pgflightprom"
)

var _ prometheus.Collector = (*pgflightprom.Metrics)(nil)

// newGroup returns a Group closed at cleanup.
func newGroup(tb testing.TB, cfg pgflight.Config) *pgflight.Group {
	tb.Helper()
	g, err := pgflight.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// brokenLocker fails every Lock: every flight fails open.
var brokenLocker = pgflight.LockerFunc(func(context.Context, int64) (func(context.Context) error, error) {
	return nil, errors.New("lock server down")
})

var discard = slog.New(slog.DiscardHandler)

// fixture is two watched Groups after a known series of fetches:
//
//	a: a miss computed, 2 hits, a fn error, a key missing, a panic
//	b: a miss failed open (its Locker is broken)
func fixture(t *testing.T) (*prometheus.Registry, *pgflightprom.Metrics) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := pgflightprom.New()
	if err := reg.Register(m); err != nil {
		t.Fatalf("Register: %v", err)
	}
	a := newGroup(t, pgflight.Config{Namespace: "a", Observer: m.Observer(), Logger: discard})
	b := newGroup(t, pgflight.Config{Namespace: "b", Observer: m.Observer(), Locker: brokenLocker, Logger: discard})
	for ns, g := range map[string]*pgflight.Group{"a": a, "b": b} {
		if err := m.Watch(ns, g); err != nil {
			t.Fatalf("Watch(%q): %v", ns, err)
		}
	}

	ctx := t.Context()
	one := func(context.Context) (int, error) { return 1, nil }
	for range 3 {
		if _, err := pgflight.Fetch(ctx, a, "k", one); err != nil {
			t.Fatal(err)
		}
	}
	fnErr := errors.New("database down")
	if _, err := pgflight.Fetch(ctx, a, "bad", func(context.Context) (int, error) { return 0, fnErr }); !errors.Is(err, fnErr) {
		t.Fatalf("Fetch(bad) error = %v, want %v", err, fnErr)
	}
	if _, err := pgflight.Fetch(ctx, a, "gone", func(context.Context) (int, error) {
		return 0, fmt.Errorf("no such user: %w", pgflight.ErrMissing)
	}); !errors.Is(err, pgflight.ErrMissing) {
		t.Fatalf("Fetch(gone) error = %v, want ErrMissing", err)
	}
	var pe *pgflight.PanicError
	if _, err := pgflight.Fetch(ctx, a, "boom", func(context.Context) (int, error) { panic("boom") }); !errors.As(err, &pe) {
		t.Fatalf("Fetch(boom) error = %v, want a *PanicError", err)
	}
	if _, err := pgflight.Fetch(ctx, b, "k", one); err != nil {
		t.Fatal(err)
	}
	return reg, m
}

// sample returns the value of the counter, or the sample count of the
// histogram, named name with the labels given as name, value pairs; -1 if
// there is none.
func sample(tb testing.TB, mfs []*dto.MetricFamily, name string, labels ...string) float64 {
	tb.Helper()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
			tb.Fatalf("%s is a %v", name, mf.GetType())
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	reg, _ := fixture(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"pgflight_hits_total", []string{"namespace", "a"}, 2},
		{"pgflight_misses_total", []string{"namespace", "a"}, 4},
		{"pgflight_computations_total", []string{"namespace", "a"}, 4},
		{"pgflight_panics_total", []string{"namespace", "a"}, 1},
		{"pgflight_fail_opens_total", []string{"namespace", "a"}, 0},
		{"pgflight_hits_total", []string{"namespace", "b"}, 0},
		{"pgflight_misses_total", []string{"namespace", "b"}, 1},
		{"pgflight_fail_opens_total", []string{"namespace", "b"}, 1},

		{"pgflight_lock_wait_duration_seconds", []string{"namespace", "a", "outcome", "ok"}, 4},
		{"pgflight_lock_wait_duration_seconds", []string{"namespace", "b", "outcome", "error"}, 1},
		{"pgflight_lock_wait_duration_seconds", []string{"namespace", "b", "outcome", "ok"}, 0},
		{"pgflight_lock_wait_duration_seconds", []string{"namespace", "b", "outcome", "timeout"}, 0},
		{"pgflight_computation_duration_seconds", []string{"namespace", "a", "outcome", "ok"}, 1},
		{"pgflight_computation_duration_seconds", []string{"namespace", "a", "outcome", "error"}, 1},
		{"pgflight_computation_duration_seconds", []string{"namespace", "a", "outcome", "missing"}, 1},
		{"pgflight_computation_duration_seconds", []string{"namespace", "a", "outcome", "panic"}, 1},
		{"pgflight_computation_duration_seconds", []string{"namespace", "b", "outcome", "ok"}, 1},
		{"pgflight_flight_duration_seconds", []string{"namespace", "a", "outcome", "computed", "role", "led"}, 4},
		{"pgflight_flight_duration_seconds", []string{"namespace", "b", "outcome", "failed-open", "role", "led"}, 1},
		{"pgflight_flight_duration_seconds", []string{"namespace", "b", "outcome", "computed", "role", "led"}, 0},
		{"pgflight_flight_duration_seconds", []string{"namespace", "a", "outcome", "received", "role", "joined"}, 0},
	} {
		if got := sample(t, mfs, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	// The exposition, help text included, of one counter.
	want := `
# HELP pgflight_hits_total Keys answered from the cache without waiting for a lock.
# TYPE pgflight_hits_total counter
pgflight_hits_total{namespace="a"} 2
pgflight_hits_total{namespace="b"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pgflight_hits_total"); err != nil {
		t.Error(err)
	}
}

// A scrape over HTTP parses, has every metric, and no label but
// namespace, outcome and role.
func TestExposition(t *testing.T) {
	reg, _ := fixture(t)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	var names []string
	for name, mf := range fams {
		names = append(names, name)
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains([]string{"namespace", "outcome", "role"}, l.GetName()) {
					t.Errorf("%s has label %s", name, l.GetName())
				}
			}
		}
	}
	slices.Sort(names)
	if len(names) != reflect.TypeFor[pgflight.Stats]().NumField()+3 {
		t.Errorf("%d metrics, want one per Stats field and 3 histograms: %v", len(names), names)
	}
	mfs := make([]*dto.MetricFamily, 0, len(fams))
	for _, mf := range fams {
		mfs = append(mfs, mf)
	}
	if got := sample(t, mfs, "pgflight_misses_total", "namespace", "a"); got != 4 {
		t.Errorf("scraped pgflight_misses_total{namespace=a} = %v, want 4", got)
	}
}

// Every Stats field has its counter, named for its JSON name with
// seconds for nanoseconds, reading that field.
func TestStatsComplete(t *testing.T) {
	typ := reflect.TypeFor[pgflight.Stats]()
	var s pgflight.Stats
	v := reflect.ValueOf(&s).Elem()
	want := map[string]float64{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := "pgflight_" + strings.TrimSuffix(f.Tag.Get("json"), "_ns")
		if f.Type == reflect.TypeFor[time.Duration]() {
			v.Field(i).SetInt(int64(time.Duration(i+1) * time.Second))
			name += "_seconds"
		} else {
			v.Field(i).SetUint(uint64(i + 1))
		}
		want[name+"_total"] = float64(i + 1)
	}

	reg := prometheus.NewPedanticRegistry()
	m := pgflightprom.New()
	reg.MustRegister(m)
	if err := m.Watch("fixed", fixedStats(s)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if got := sample(t, mfs, name, "namespace", "fixed"); got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	if n := len(mfs); n != len(want) {
		t.Errorf("%d metrics, want %d (one per Stats field)", n, len(want))
	}
}

// fixedStats is a Group stand-in whose Stats are s.
type fixedStats pgflight.Stats

func (s fixedStats) Stats() pgflight.Stats { return pgflight.Stats(s) }

func TestWatch(t *testing.T) {
	m := pgflightprom.New()
	g := newGroup(t, pgflight.Config{Namespace: "w"})
	if err := m.Watch("w", nil); err == nil {
		t.Error("Watch(nil) succeeded")
	}
	if err := m.Watch("w", (*pgflight.Group)(nil)); err == nil {
		t.Error("Watch of a nil *Group succeeded")
	}
	if err := m.Watch("", g); err == nil {
		t.Error(`Watch("") succeeded`)
	}
	if err := m.Watch("w", g); err != nil {
		t.Fatal(err)
	}
	if err := m.Watch("w", g); err == nil {
		t.Error("Watch of a namespace already watched succeeded")
	}
	if n := testutil.CollectAndCount(m, "pgflight_hits_total"); n != 1 {
		t.Errorf("%d pgflight_hits_total series, want 1", n)
	}
	m.Unwatch("w")
	if n := testutil.CollectAndCount(m, "pgflight_hits_total"); n != 0 {
		t.Errorf("%d pgflight_hits_total series after Unwatch, want 0", n)
	}
	if err := m.Watch("w", g); err != nil {
		t.Errorf("Watch after Unwatch: %v", err)
	}
}

// Bad options fail Register, and the Observer then records nothing
// rather than panic in Fetch.
func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  pgflightprom.Option
	}{
		{"buckets unsorted", pgflightprom.WithBuckets([]float64{1, 0.5})},
		{"buckets empty", pgflightprom.WithBuckets([]float64{})},
		{"label taken", pgflightprom.WithConstLabels(prometheus.Labels{"namespace": "x"})},
		{"label value", pgflightprom.WithConstLabels(prometheus.Labels{"service": "\xff"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := pgflightprom.New(tc.opt)
			if err := prometheus.NewRegistry().Register(m); err == nil {
				t.Error("Register succeeded")
			}
			g := newGroup(t, pgflight.Config{Observer: m.Observer()})
			if _, err := pgflight.Fetch(t.Context(), g, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
				t.Fatal(err)
			}
		})
	}

	m := pgflightprom.New(pgflightprom.WithBuckets([]float64{0.001, 1}), pgflightprom.WithConstLabels(prometheus.Labels{"service": "api"}))
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatalf("Register with good options: %v", err)
	}
	g := newGroup(t, pgflight.Config{Namespace: "o", Observer: m.Observer()})
	if _, err := pgflight.Fetch(t.Context(), g, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got := sample(t, mfs, "pgflight_computation_duration_seconds", "namespace", "o", "outcome", "ok", "service", "api"); got != 1 {
		t.Errorf("computations with service=api = %v, want 1", got)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pgflight_computation_duration_seconds" {
			if n := len(mf.GetMetric()[0].GetHistogram().GetBucket()); n != 2 {
				t.Errorf("%d buckets, want 2", n)
			}
		}
	}
}
