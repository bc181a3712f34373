package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/redisstore"
)

// BenchmarkGet measures a hit on the test server, one round trip per op.
// Its baseline, raw, is the same GET through go-redis alone. The client,
// from redis.ParseURL, lacks ContextTimeoutEnabled, so a Get whose ctx can
// end sends its command from a goroutine of its own (detached); a Get whose
// ctx never ends, or that has a deadline and a client with
// ContextTimeoutEnabled, waits in the caller's goroutine (inline).
func BenchmarkGet(b *testing.B) {
	rdb := newClient(b)
	ctx := b.Context()
	key := b.Name() + ":k"
	if err := rdb.Set(ctx, key, make([]byte, 1<<10), time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Del(context.Background(), key) })
	opt := *rdb.Options()
	opt.ContextTimeoutEnabled = true
	rdbCT := redis.NewClient(&opt)
	b.Cleanup(func() { rdbCT.Close() })
	dctx, cancel := context.WithTimeout(ctx, time.Hour)
	b.Cleanup(cancel)

	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rdb.Get(ctx, key).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	get := func(b *testing.B, s *redisstore.Store, ctx context.Context) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := s.Get(ctx, key); !ok || err != nil {
				b.Fatalf("Get = %v, %v; want a hit", ok, err)
			}
		}
	}
	b.Run("redisstore/detached", func(b *testing.B) { get(b, redisstore.New(rdb), ctx) })
	b.Run("redisstore/inline", func(b *testing.B) { get(b, redisstore.New(rdb), context.Background()) })
	b.Run("redisstore/inline/ContextTimeoutEnabled", func(b *testing.B) { get(b, redisstore.New(rdbCT), dctx) })
}
