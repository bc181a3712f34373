package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pgstore"
	"github.com/pgflight/pgflight/redisstore"
)

// BenchmarkStores measures pgstore beside redisstore, each against its
// local test server, in one run: a hit (Get of a 1 KB value), a miss as
// Fetch pays it (Get of a missing key, then Set of a 1 KB value), and
// GetMany of 100 present keys. Each op is sequential, on one connection.
// pgstore runs on pgx's default pool (prepared statements), and
// pgstore-unprepared on a pool in exec mode, as behind PgBouncer in
// transaction pooling.
// The Redis client has ContextTimeoutEnabled and the ctx a deadline, the
// configuration redisstore recommends, so neither store starts a
// goroutine per call. pgstore's janitor is off.
func BenchmarkStores(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	pg, table := newStore(b, newPool(b, 4))
	// The same table through a pool in exec mode: unprepared statements,
	// as through PgBouncer in transaction pooling.
	cfg, err := pgxpool.ParseConfig(testserver.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	execPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(execPool.Close)
	pgu, err := pgstore.New(execPool, pgstore.WithTable(table), pgstore.WithSweepInterval(-1))
	if err != nil {
		b.Fatal(err)
	}
	opt, err := redis.ParseURL(testserver.RedisURL(b))
	if err != nil {
		b.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { rdb.Close() })
	stores := []struct {
		name string
		c    pgflight.BatchCache
	}{
		{"pgstore", pg},
		{"pgstore-unprepared", pgu},
		{"redisstore", redisstore.New(rdb)},
	}
	val := make([]byte, 1<<10)
	prefix := fmt.Sprintf("bench:%d:", time.Now().UnixNano())
	keys := make([]string, 100)
	vals := make([][]byte, len(keys))
	ttls := make([]time.Duration, len(keys))
	for i := range keys {
		keys[i], vals[i], ttls[i] = fmt.Sprintf("%sk%03d", prefix, i), val, 10*time.Minute
	}
	for _, s := range stores {
		if err := s.c.SetMany(ctx, keys, vals, ttls); err != nil {
			b.Fatal(err)
		}
	}

	for _, s := range stores {
		b.Run("hit/"+s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := s.c.Get(ctx, keys[0]); !ok || err != nil {
					b.Fatalf("Get = %v, %v; want a hit", ok, err)
				}
			}
		})
	}
	for _, s := range stores {
		b.Run("miss/"+s.name, func(b *testing.B) {
			b.ReportAllocs()
			run := fmt.Sprintf("%smiss:%s:%d:", prefix, s.name, time.Now().UnixNano())
			n := 0
			for b.Loop() {
				n++
				key := run + fmt.Sprint(n)
				if _, ok, err := s.c.Get(ctx, key); ok || err != nil {
					b.Fatalf("Get = %v, %v; want a miss", ok, err)
				}
				if err := s.c.Set(ctx, key, val, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, s := range stores {
		b.Run("getmany100/"+s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.c.GetMany(ctx, keys)
				if err != nil || len(got) != len(keys) || got[99] == nil {
					b.Fatalf("GetMany = %d values, %v; want 100 hits", len(got), err)
				}
			}
		})
	}
}
