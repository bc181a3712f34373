package pgflightotel_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/extra/pgflightotel"
)

// BenchmarkObserver measures what the Observer adds to a hit and to a
// miss (a forced refresh: lock, compute, store, on the in-process Locker
// and Cache, so the Observer's share is as large as it gets), with the
// unobserved baseline in the same run. The SDK samples every span and
// hands it to a no-op exporter; a batching exporter adds its own cost.
func BenchmarkObserver(b *testing.B) {
	fn := func(context.Context) (int, error) { return 1, nil }
	for _, observed := range []bool{false, true} {
		name := "plain"
		cfg := pgflight.Config{Namespace: "bench"}
		if observed {
			name = "observed"
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() {
				tp.Shutdown(context.Background())
				mp.Shutdown(context.Background())
			})
			obs, err := pgflightotel.New(pgflightotel.WithTracerProvider(tp), pgflightotel.WithMeterProvider(mp))
			if err != nil {
				b.Fatal(err)
			}
			cfg.Observer = obs
		}
		g := newGroup(b, cfg)
		ctx := context.Background()
		if _, err := pgflight.Fetch(ctx, g, "k", fn); err != nil {
			b.Fatal(err)
		}
		b.Run("hit/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pgflight.Fetch(ctx, g, "k", fn); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("miss/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithForceRefresh()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
