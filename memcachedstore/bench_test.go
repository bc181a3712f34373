package memcachedstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// BenchmarkGet measures a hit and a miss of 1 KiB values on the test
// server, one round trip per op. Its baseline, raw, is the same get
// through gomemcache alone. A Get whose ctx can end runs gomemcache in a
// goroutine of its own (detached); one whose ctx never ends waits in the
// caller's goroutine (inline).
func BenchmarkGet(b *testing.B) {
	s, mc := newStore(b)
	key := b.Name() + ":k"
	if err := mc.Set(&memcache.Item{Key: key, Value: make([]byte, 1<<10), Expiration: 3600}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { mc.Delete(key) })
	for _, hit := range []bool{true, false} {
		k, name := key, "hit"
		if !hit {
			k, name = b.Name()+":missing", "miss"
		}
		b.Run(name+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := mc.Get(k); (err == nil) != hit {
					b.Fatalf("Get = %v, want hit %v", err, hit)
				}
			}
		})
		get := func(b *testing.B, ctx context.Context) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := s.Get(ctx, k); ok != hit || err != nil {
					b.Fatalf("Get = %v, %v; want hit %v", ok, err, hit)
				}
			}
		}
		b.Run(name+"/memcachedstore/detached", func(b *testing.B) { get(b, b.Context()) })
		b.Run(name+"/memcachedstore/inline", func(b *testing.B) { get(b, context.Background()) })
	}
}

// BenchmarkSet measures a Set of 1 KiB, against gomemcache alone (raw).
// A detached Set also copies its value.
func BenchmarkSet(b *testing.B) {
	s, mc := newStore(b)
	key := b.Name() + ":k"
	val := make([]byte, 1<<10)
	b.Cleanup(func() { mc.Delete(key) })
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := mc.Set(&memcache.Item{Key: key, Value: val, Expiration: 60}); err != nil {
				b.Fatal(err)
			}
		}
	})
	set := func(b *testing.B, ctx context.Context) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Set(ctx, key, val, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("memcachedstore/detached", func(b *testing.B) { set(b, b.Context()) })
	b.Run("memcachedstore/inline", func(b *testing.B) { set(b, context.Background()) })
}

// BenchmarkGetMany measures a GetMany of 100 keys, half of them missing,
// one multi-get, against the same GetMulti through gomemcache alone.
func BenchmarkGetMany(b *testing.B) {
	s, mc := newStore(b)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = b.Name() + ":" + string(rune('A'+i%50)) + string(rune('a'+i/50))
		if i%2 == 0 {
			if err := mc.Set(&memcache.Item{Key: keys[i], Value: make([]byte, 1<<10), Expiration: 3600}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mc.GetMulti(keys); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memcachedstore/detached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetMany(b.Context(), keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}
