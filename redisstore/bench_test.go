package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgflight/pgflight/redisstore"
)

// BenchmarkGet measures a hit on the test server, one round trip per op.
// Its baseline, raw, is the same GET through go-redis alone.
func BenchmarkGet(b *testing.B) {
	rdb := newClient(b)
	ctx := b.Context()
	key := b.Name() + ":k"
	if err := rdb.Set(ctx, key, make([]byte, 1<<10), time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Del(context.Background(), key) })

	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rdb.Get(ctx, key).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redisstore", func(b *testing.B) {
		s := redisstore.New(rdb)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := s.Get(ctx, key); !ok || err != nil {
				b.Fatalf("Get = %v, %v; want a hit", ok, err)
			}
		}
	})
}
