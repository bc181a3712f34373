package pgflightotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgflight/pgflight"
)

// point returns the value of the counter, or the count of the histogram,
// named name whose data point has exactly the attributes given as key,
// value pairs; -1 if there is none.
func point(tb testing.TB, rm metricdata.ResourceMetrics, name string, kvs ...string) int64 {
	tb.Helper()
	want := make([]attribute.KeyValue, 0, len(kvs)/2)
	for i := 0; i < len(kvs); i += 2 {
		want = append(want, attribute.String(kvs[i], kvs[i+1]))
	}
	set := attribute.NewSet(want...)
	match := func(got attribute.Set) bool {
		if got.Len() != set.Len() {
			return false
		}
		for _, kv := range want {
			v, ok := got.Value(kv.Key)
			if !ok || v.Emit() != kv.Value.Emit() {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return p.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						return int64(p.Count)
					}
				}
			default:
				tb.Fatalf("%s is a %T", name, m.Data)
			}
		}
	}
	return -1
}

// The metrics of a known series of fetches on two Groups:
//
//	a: a miss computed, 2 hits, a fn error, a key missing (then its
//	   negative hit), a panic
//	b: a miss failed open (its Locker is broken)
func TestMetrics(t *testing.T) {
	tm := newTelemetry(t)
	a := newGroup(t, pgflight.Config{Namespace: "a", Observer: tm.obs, Logger: discard})
	b := newGroup(t, pgflight.Config{Namespace: "b", Observer: tm.obs, Locker: brokenLocker, Logger: discard})
	ctx := t.Context()
	for range 3 {
		if _, err := pgflight.Fetch(ctx, a, "k", one); err != nil {
			t.Fatal(err)
		}
	}
	fnErr := errors.New("database down")
	if _, err := pgflight.Fetch(ctx, a, "bad", func(context.Context) (int, error) { return 0, fnErr }); !errors.Is(err, fnErr) {
		t.Fatalf("error %v, want %v", err, fnErr)
	}
	for range 2 {
		if _, err := pgflight.Fetch(ctx, a, "gone", func(context.Context) (int, error) {
			return 0, fmt.Errorf("no such user: %w", pgflight.ErrMissing)
		}); !errors.Is(err, pgflight.ErrMissing) {
			t.Fatalf("error %v, want ErrMissing", err)
		}
	}
	if _, err := pgflight.Fetch(ctx, a, "boom", func(context.Context) (int, error) { panic("boom") }); err == nil {
		t.Fatal("a panic gave no error")
	}
	if _, err := pgflight.Fetch(ctx, b, "k", one); err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(ctx, &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	ns, out, role := "pgflight.namespace", "pgflight.outcome", "pgflight.role"
	for _, tc := range []struct {
		name string
		kvs  []string
		want int64
	}{
		{"pgflight.hits", []string{ns, "a", "pgflight.stale", "false", "pgflight.negative", "false"}, 2},
		{"pgflight.hits", []string{ns, "a", "pgflight.stale", "false", "pgflight.negative", "true"}, 1},
		{"pgflight.hits", []string{ns, "b", "pgflight.stale", "false", "pgflight.negative", "false"}, -1},
		{"pgflight.flights", []string{ns, "a", out, "computed", role, "led"}, 4},
		{"pgflight.flights", []string{ns, "b", out, "failed-open", role, "led"}, 1},
		{"pgflight.flights", []string{ns, "b", out, "computed", role, "led"}, -1},
		{"pgflight.fail_opens", []string{ns, "b"}, 1},
		{"pgflight.fail_opens", []string{ns, "a"}, -1},
		{"pgflight.lock.wait.duration", []string{ns, "a", out, "ok"}, 4},
		{"pgflight.lock.wait.duration", []string{ns, "b", out, "error"}, 1},
		{"pgflight.compute.duration", []string{ns, "a", out, "ok"}, 1},
		{"pgflight.compute.duration", []string{ns, "a", out, "error"}, 1},
		{"pgflight.compute.duration", []string{ns, "a", out, "missing"}, 1},
		{"pgflight.compute.duration", []string{ns, "a", out, "panic"}, 1},
		{"pgflight.compute.duration", []string{ns, "b", out, "ok"}, 1},
		{"pgflight.flight.duration", []string{ns, "a", out, "computed", role, "led"}, 4},
		{"pgflight.flight.duration", []string{ns, "b", out, "failed-open", role, "led"}, 1},
	} {
		if got := point(t, rm, tc.name, tc.kvs...); got != tc.want {
			t.Errorf("%s%v = %d, want %d", tc.name, tc.kvs, got, tc.want)
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				if m.Unit != "s" || len(h.DataPoints[0].Bounds) == 0 || h.DataPoints[0].Bounds[0] >= 0.01 {
					t.Errorf("%s: unit %q, bounds %v, want seconds with bounds below 10ms", m.Name, m.Unit, h.DataPoints[0].Bounds)
				}
			}
		}
	}
}
