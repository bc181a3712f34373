package pgflightprom_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/extra/pgflightprom"
)

// BenchmarkObserver measures what the Observer adds to a hit and to a
// miss (a forced refresh: lock, compute, store, on the in-process
// Locker and Cache, so the Observer's share is as large as it gets), with
// the unobserved baseline in the same run.
func BenchmarkObserver(b *testing.B) {
	fn := func(context.Context) (int, error) { return 1, nil }
	for _, observed := range []bool{false, true} {
		name := "plain"
		cfg := pgflight.Config{Namespace: "bench"}
		if observed {
			name = "observed"
			m := pgflightprom.New()
			prometheus.NewRegistry().MustRegister(m)
			cfg.Observer = m.Observer()
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
