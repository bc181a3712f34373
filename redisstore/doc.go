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
// *redis.ClusterClient for Redis Cluster. Each call is one command on one
// key (GET, SET with PX or EX, DEL), so it needs no hash tags in a cluster.
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
// go-redis checks ctx before it sends a command: a call with an ended ctx
// fails at once. Once a command is sent, go-redis waits for its reply until
// the socket's deadline, which is ctx's deadline only if the client has
// redis.Options.ContextTimeoutEnabled; otherwise, and for a ctx cancelled
// without a deadline, it is the client's ReadTimeout (default 5 seconds).
// So that a stalled server costs a caller no more than its deadline, give
// the client ContextTimeoutEnabled, and a ReadTimeout short enough for the
// callers that have none:
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
