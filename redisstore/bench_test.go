package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
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
//
// cpu-ns/op is the CPU time, user and system, the test process spent per
// op (not the server's): on a busy host, where the cores are all taken,
// that is what a call costs the throughput, more than its latency.
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
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := rdb.Get(ctx, key).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	get := func(b *testing.B, s *redisstore.Store, ctx context.Context) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, ok, err := s.Get(ctx, key); !ok || err != nil {
				b.Fatalf("Get = %v, %v; want a hit", ok, err)
			}
		}
	}
	b.Run("redisstore/detached", func(b *testing.B) { get(b, redisstore.New(rdb), ctx) })
	b.Run("redisstore/inline", func(b *testing.B) { get(b, redisstore.New(rdb), context.Background()) })
	b.Run("redisstore/inline/ContextTimeoutEnabled", func(b *testing.B) { get(b, redisstore.New(rdbCT), dctx) })

	// The same with 64 goroutines at once, as a busy server calls it: here
	// the CPU a call costs decides the throughput.
	b.Run("parallel/raw", func(b *testing.B) {
		defer reportCPU(b)()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := rdb.Get(ctx, key).Bytes(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	pget := func(b *testing.B, s *redisstore.Store, ctx context.Context) {
		defer reportCPU(b)()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok, err := s.Get(ctx, key); !ok || err != nil {
					b.Errorf("Get = %v, %v; want a hit", ok, err)
					return
				}
			}
		})
	}
	b.Run("parallel/redisstore/detached", func(b *testing.B) { pget(b, redisstore.New(rdb), ctx) })
	b.Run("parallel/redisstore/inline", func(b *testing.B) { pget(b, redisstore.New(rdb), context.Background()) })
}

// reportCPU starts counting the CPU time of the process; the func it
// returns, deferred, reports it per op as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := selfCPU(b)
	return func() { b.ReportMetric(float64(selfCPU(b)-start)/float64(b.N), "cpu-ns/op") }
}

// selfCPU returns the CPU time, user and system, this process has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGetMany measures a GetMany of 100 hits of 100 bytes each, with a
// ctx that never ends (inline). On a single node it is one MGET, one round
// trip; on the 3-master test cluster, one GET per key in a pipeline, which
// go-redis splits into one pipeline per master, sent concurrently. Its
// baselines, through go-redis alone on the single node, are node/MGET, one
// MGET of the same keys (which a cluster refuses across slots: CROSSSLOT),
// and node/GET-pipeline, the pipeline of GETs that GetMany sends to a
// cluster and used to send to a single node too.
func BenchmarkGetMany(b *testing.B) {
	ctx := context.Background()
	keys := make([]string, 100)
	vals := make([][]byte, len(keys))
	ttls := make([]time.Duration, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", b.Name(), i)
		vals[i] = bytes.Repeat([]byte{byte(i)}, 100)
		ttls[i] = time.Hour
	}
	getMany := func(b *testing.B, rdb redis.UniversalClient) {
		s := redisstore.New(rdb)
		if err := s.SetMany(ctx, keys, vals, ttls); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			for _, k := range keys {
				rdb.Del(context.Background(), k)
			}
		})
		b.ReportAllocs()
		for b.Loop() {
			got, err := s.GetMany(ctx, keys)
			if err != nil || len(got) != len(keys) || got[len(got)-1] == nil {
				b.Fatalf("GetMany = %d values, %v; want %d hits", len(got), err, len(keys))
			}
		}
	}
	node, cluster := newClient(b), newClusterClient(b)
	b.Run("node/MGET", func(b *testing.B) {
		if err := redisstore.New(node).SetMany(ctx, keys, vals, ttls); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			got, err := node.MGet(ctx, keys...).Result()
			if err != nil || len(got) != len(keys) || got[len(got)-1] == nil {
				b.Fatalf("MGET = %d values, %v; want %d hits", len(got), err, len(keys))
			}
		}
	})
	b.Run("node/GET-pipeline", func(b *testing.B) {
		b.ReportAllocs()
		cmds := make([]*redis.StringCmd, len(keys))
		for b.Loop() {
			_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, k := range keys {
					cmds[i] = p.Get(ctx, k)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("node", func(b *testing.B) { getMany(b, node) })
	b.Run("cluster", func(b *testing.B) { getMany(b, cluster) })
}
