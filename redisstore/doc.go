// Package redisstore is a [pgflight.Cache] on Redis, through go-redis v9.
// Every process of a fleet that shares the Redis server shares the values,
// so pgflight computes each one once across the fleet.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	g, err := pgflight.New(pgflight.Config{
//		Cache:  redisstore.New(rdb),
//		Locker: pglock.New(pool),
//	})
//
// [New] takes a [redis.UniversalClient]: a *redis.Client for a single node,
// the failover client of redis.NewFailoverClient for Sentinel, or a
// *redis.ClusterClient for Redis Cluster. The tests run the conformance
// suite against all three, on real servers.
//
// # Redis Cluster
//
// Get, Set and Delete are one command on one key (GET, SET with PX or EX,
// DEL), so they need no hash tags. The batches that FetchMany uses work
// across hash slots too:
//
//   - [Store.GetMany] sends one GET per key in one pipeline, and
//     [Store.SetMany] one SET per key (each with its own TTL, which MSET
//     cannot carry). go-redis splits a pipeline by hash slot into one
//     pipeline per master and sends those concurrently, so a batch costs
//     one round trip to each master that serves one of its keys, in
//     parallel, and never fails with CROSSSLOT, as one MGET across slots
//     would.
//   - Through a *redis.Client (a single node, or Sentinel), where one
//     server holds every key, GetMany is one MGET: one round trip, and
//     half the time of a pipeline of GETs. For 100 hits of 100 bytes on one
//     host (BenchmarkGetMany), GetMany takes about 75 µs on a single node
//     and 200 µs on a cluster of three masters.
//   - A batch fails as a whole: if any master fails, GetMany returns an
//     error and no values, which FetchMany counts as a miss of every key
//     (it computes them and still returns them), and SetMany returns an
//     error, having stored the keys of the other masters.
//
// A Namespace or [WithPrefix] prefix that holds a hash tag, such as
// "{cache}:", puts every entry in one slot, on one master. That is what
// the cluster does with hash tags, and it is seldom what a cache wants.
//
// When a master dies, every call that involves it fails. With go-redis's
// defaults (MaxRedirects 3, DialerRetries 5) each such call takes about
// 1.7 seconds to do so, retrying, unless its ctx ends first; give the
// client lower retry settings, or callers a deadline, to fail open sooner.
// The other masters keep serving their keys until the cluster's
// cluster-node-timeout; after that, a cluster without a replica to promote
// refuses every command (CLUSTERDOWN, unless
// cluster-require-full-coverage is off), and pgflight computes every value
// until the master is back.
//
// # Keys and values
//
// Redis keys and values are binary safe, so the key pgflight passes
// ("namespace:key") is used as it is, or after the prefix of [WithPrefix].
// Values are stored as they are. An entry's TTL is set by SET in whole
// milliseconds, rounded up: Redis then expires it itself.
//
// # Errors
//
// A miss is (nil, false, nil). Any other failure is an error that names the
// operation and wraps go-redis's error, such as "redisstore: get: dial tcp
// 127.0.0.1:6379: connect: connection refused"; test it with [errors.Is].
// If ctx has ended, the error also wraps ctx.Err(), so that
// errors.Is(err, context.DeadlineExceeded) holds even where go-redis
// reports only "i/o timeout".
//
// # Context
//
// Every call returns promptly once its ctx ends, with an error wrapping
// ctx.Err(), even if the server has stalled and whatever the client's
// options. go-redis alone would not do so: once a command is sent, it waits
// for the reply until the socket's deadline, which is ctx's deadline only
// if the client has redis.Options.ContextTimeoutEnabled (a client from
// redis.ParseURL has not), and otherwise, or for a ctx cancelled before its
// deadline, the client's ReadTimeout (default 5 seconds). So [New] reads
// the client's options once:
//
//   - With ContextTimeoutEnabled, a call whose ctx has a deadline, or can
//     never end, waits for go-redis in the caller's goroutine, at no extra
//     cost. A ctx cancelled before its deadline still ends the call at that
//     deadline at the latest.
//   - Any other call sends its command from a goroutine of its own, and
//     returns as soon as ctx ends. That costs three allocations (about
//     200 bytes) and some 3-4 µs of CPU per call, mostly the scheduler
//     waking the goroutine and then the caller, against 15-20 µs for the
//     GET itself (BenchmarkGet, cpu-ns/op): on a host whose cores are all
//     busy, about a tenth fewer hits per second. Set and SetMany also copy
//     their values, since the caller owns them again once they return. The
//     command then finishes in the background under the same, ended, ctx:
//     go-redis makes no retry, and waits for the reply no longer than the
//     ReadTimeout, after which it closes the connection, so no later
//     command reads a stale reply. A client with no ReadTimeout (-1 or -2)
//     keeps such a goroutine, and its connection, until the server answers
//     or the connection breaks.
//
// For a stalled server to cost the fewest goroutines and connections, and
// for hits to cost the least, give the client ContextTimeoutEnabled, the
// calls a deadline (a ctx that can only be cancelled still takes the
// goroutine), and the client a ReadTimeout short enough for the callers that
// have no deadline:
//
//	rdb := redis.NewClient(&redis.Options{
//		Addr:                  addr,
//		ContextTimeoutEnabled: true,
//		ReadTimeout:           time.Second,
//	})
//
// redisstore does not import pgflight; it implements [pgflight.Cache] and
// [pgflight.Deleter] by their method sets alone.
//
// [pgflight.Cache]: https://pkg.go.dev/github.com/pgflight/pgflight#Cache
// [pgflight.Deleter]: https://pkg.go.dev/github.com/pgflight/pgflight#Deleter
package redisstore
