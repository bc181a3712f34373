package pgflight_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// BenchmarkHit compares the hit path through Fetch with a raw read of the
// same backend, in the same run: memstore and Redis.
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	fn := func(context.Context) (string, error) { return "value-of-a-typical-size-0123456789", nil }

	mem := memstore.New()
	b.Cleanup(func() { mem.Close() })
	gm := newGroup(b, pgflight.Config{Cache: mem, Namespace: "bench"})
	pgflight.Fetch(ctx, gm, "k", fn, pgflight.WithTTL(time.Hour))
	b.Run("memstore/raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, _ := mem.Get(ctx, "bench:k"); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("memstore/fetch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pgflight.Fetch(ctx, gm, "k", fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same with an Observer that does nothing: what observing costs
	// (issue 11.1; "memstore/fetch" has none, and must not pay for it).
	gobs := newGroup(b, pgflight.Config{Cache: mem, Namespace: "bench", Observer: pgflight.NopObserver{}})
	b.Run("memstore/fetch-observed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pgflight.Fetch(ctx, gobs, "k", fn); err != nil {
				b.Fatal(err)
			}
		}
	})

	rdb := newRedis(b)
	rs := redisstore.New(rdb)
	gr := newGroup(b, pgflight.Config{Cache: rs, Namespace: "bench"})
	pgflight.Fetch(ctx, gr, "k", fn, pgflight.WithTTL(time.Hour))
	b.Run("redis/raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rdb.Get(ctx, "bench:k").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis/fetch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pgflight.Fetch(ctx, gr, "k", fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMiss compares the uncontended miss path through Fetch (read,
// lock, re-check, compute nothing, store, release; memstore as the cache,
// pglock as the Locker) with a raw loop of the lock cycle alone:
// BEGIN; pg_advisory_xact_lock; COMMIT, pipelined as tightly as pgx allows.
func BenchmarkMiss(b *testing.B) {
	ctx := context.Background()
	pool := newPool(b)
	b.Run("raw-xact", func(b *testing.B) {
		b.ReportAllocs()
		var id int64
		for b.Loop() {
			id++
			c, err := pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			batch := &pgx.Batch{}
			batch.Queue("begin")
			batch.Queue("select pg_advisory_xact_lock($1)", id)
			if err := c.SendBatch(ctx, batch).Close(); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Exec(ctx, "commit"); err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	})
	b.Run("fetch", func(b *testing.B) {
		b.ReportAllocs()
		mem := memstore.New()
		defer mem.Close()
		g := newGroup(b, pgflight.Config{Cache: mem, Locker: pglock.New(pool)})
		fn := func(context.Context) (int, error) { return 1, nil }
		i := 0
		for b.Loop() {
			i++
			if _, err := pgflight.Fetch(ctx, g, strconv.Itoa(i), fn); err != nil {
				b.Fatal(err)
			}
		}
		if s := g.Stats(); s.Computations != s.Misses || s.FailOpens != 0 {
			b.Fatalf("stats = %+v, want every call a locked miss", s)
		}
	})
}
