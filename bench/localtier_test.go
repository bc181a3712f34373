package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/viccon/sturdyc"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// BenchmarkLocalTierHit compares, in one run, a hit served by pgflight's
// local tier (Config.Local, memstore, with defaults otherwise) with a hit
// of sturdyc, whose cache is in process: 1,000 warm keys, every goroutine
// of GOMAXPROCS*8 reading them in turn (issue 10's target: >= 0.8x).
// Reproduce: cd bench && go test -run '^$' -bench LocalTierHit -count 5 .
func BenchmarkLocalTierHit(b *testing.B) {
	const keys = 1000
	ctx := context.Background()
	names := make([]string, keys)
	for i := range names {
		names[i] = "key-" + strconv.Itoa(i)
	}
	fn := func(context.Context) (string, error) { return "value-of-a-typical-size-0123456789", nil }

	shared, local := memstore.New(), memstore.New()
	b.Cleanup(func() { shared.Close(); local.Close() })
	g, err := pgflight.New(pgflight.Config{Cache: shared, Local: local, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	sc := sturdyc.New[string](sturdycCapacity, sturdycShards, time.Hour, sturdycEvict)
	for _, k := range names {
		pgflight.Fetch(ctx, g, k, fn)
		sturdyc.GetOrFetch(ctx, sc, k, sturdyc.FetchFn[string](fn))
	}
	b.Run("sturdyc", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := sturdyc.GetOrFetch(ctx, sc, names[i%keys], sturdyc.FetchFn[string](fn)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("pgflight-local", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := pgflight.Fetch(ctx, g, names[i%keys], fn); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if s := g.Stats(); s.LocalHits == 0 {
			b.Errorf("no local hit: %+v", s)
		}
	})
}
