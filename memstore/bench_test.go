package memstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/pgflight/pgflight/memstore"
)

// BenchmarkGet measures a hit. Its baseline, otter, is a bare otter cache of
// []byte with the same policies, read without the copy that memstore makes
// so that the caller owns the slice.
func BenchmarkGet(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 64 << 10} {
		const key = "pgflight:bench"
		val := make([]byte, size)
		b.Run(fmt.Sprintf("size=%d/otter", size), func(b *testing.B) {
			c := otter.Must(&otter.Options[string, []byte]{
				MaximumWeight:    memstore.DefaultMaxBytes,
				Weigher:          func(k string, v []byte) uint32 { return uint32(len(k) + len(v)) },
				ExpiryCalculator: otter.ExpiryWriting[string, []byte](time.Hour),
			})
			defer c.StopAllGoroutines()
			c.Set(key, val)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := c.GetIfPresent(key); !ok {
					b.Fatal("miss")
				}
			}
		})
		b.Run(fmt.Sprintf("size=%d/memstore", size), func(b *testing.B) {
			s := memstore.New()
			defer s.Close()
			ctx := b.Context()
			if err := s.Set(ctx, key, val, time.Hour); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, _ := s.Get(ctx, key); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}
