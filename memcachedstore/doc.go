// Package memcachedstore is a [pgflight.Cache] on memcached, through
// github.com/bradfitz/gomemcache. Every process of a fleet that shares the
// memcached servers shares the values, so pgflight computes each one once
// across the fleet.
//
//	mc := memcache.New("10.0.0.1:11211", "10.0.0.2:11211")
//	mc.MaxIdleConns = 64
//	g, err := pgflight.New(pgflight.Config{
//		Cache:  memcachedstore.New(mc),
//		Locker: pglock.New(pool),
//	})
//
// [New] takes a *memcache.Client, which spreads keys over its servers. Each
// call is one command on one server (get, set, delete), except GetMany,
// which sends one multi-get to each server holding some of its keys, and
// SetMany, one set per key.
//
// # Keys
//
// pgflight's keys ("namespace:key") may hold any bytes and be of any
// length; memcached's are at most 250 bytes, with no spaces or control
// characters. So a key of 1 to 250 printable ASCII bytes (0x21 to 0x7e) is
// sent as it is, unless it starts with "~sha256:". Every other key (empty,
// too long, with a space, a control character or a byte above 0x7e, or
// starting with "~sha256:") is sent as "~sha256:" followed by the unpadded
// base64url encoding of its SHA-256, 51 bytes in all:
//
//	user:42          → user:42
//	user 42          → ~sha256:0_EHiWmDVXpFbQ8VACVulm7HnrauTT4OWZNU564hDx4
//	~sha256:anything → ~sha256:… (hashed too)
//
// No key sent as it is starts with "~sha256:", and every hashed key does,
// so two keys share an item only if their SHA-256 sums collide. The mapping
// is fixed: changing it would orphan every stored entry.
//
// # Values
//
// Values are stored as they are, with flags 0. memcached stores an item
// (key, value and a 59-byte header) only up to its item size limit, the
// -I option of the server: 1 MiB by default. A larger value is never
// stored, in part or whole: Set returns a [*TooLargeError], which matches
// [ErrTooLarge] with [errors.Is], names the value's size and the limit,
// and leaves the key's previous value in place. Tell the Store about
// servers started with another -I with [WithMaxItemSize]; if its limit is
// larger than a server's, that server refuses the value instead
// ("SERVER_ERROR object too large for cache"), and Set returns the same
// error, but memcached has then deleted the key's previous value.
//
// # Expiry
//
// memcached counts time in whole seconds of its own clock, and expires an
// item set to live n seconds at the n-th tick of that clock, between n-1
// and n seconds later. So Set rounds its ttl up to whole seconds, at least
// one, and adds a second: an entry lives at least its TTL and less than two
// seconds longer. A TTL under a second lives one to two seconds. So
// pgflight may serve a value up to two seconds past its TTL: rather that
// than an entry that expires before its TTL, or at once (an expiration of
// one second lived 150 to 830 ms when measured).
//
// memcached takes an expiration above 30 days (2,592,000 seconds) as a Unix
// time, so for longer TTLs Set sends the Unix time at which the entry
// expires, by the local clock: a client whose clock is off from the
// server's moves such an entry's expiry by as much. An expiry past January
// 2038 (the largest Unix time memcached takes) is that date.
//
// # Errors
//
// A miss is (nil, false, nil). Any other failure is an error that names the
// operation and wraps gomemcache's error, such as "memcachedstore: get:
// dial tcp 127.0.0.1:11211: connect: connection refused"; test it with
// [errors.Is] and [errors.As].
//
// # Context
//
// gomemcache takes no ctx: a command, once sent, waits for its reply until
// the client's Timeout (500 ms by default), which bounds every dial, write
// and read on the socket, whatever ctx says. So the Store covers ctx this
// way:
//
//   - A call whose ctx has already ended fails at once with an error
//     wrapping ctx.Err(), and sends nothing.
//   - A call whose ctx can never end (context.Background) waits for
//     gomemcache in the caller's goroutine, at no extra cost.
//   - Any other call runs gomemcache in a goroutine of its own, and returns
//     as soon as ctx ends, with an error wrapping ctx.Err(). That costs a
//     goroutine, a channel, three allocations (about 200 bytes) and a
//     second wake-up per call: on the loopback of a busy 2-core machine a
//     hit took 20 to 30 µs so, against 15 µs inline (BenchmarkGet); over a
//     network the round trip dominates. Set and SetMany also copy their
//     values, since the caller owns them again once they return. The
//     command then goes on in the background with no ctx at all, for at
//     most one Timeout to dial, one to write a command and read its reply,
//     and one more for each further reply line of a get (one per item).
//     gomemcache then closes the connection, so no later command reads a
//     stale reply. A Set that ctx cut short may still be stored, in whole.
//
// ctx's deadline never reaches the socket, so a stalled server costs a
// goroutine and a connection for up to the client's Timeout per call
// whose ctx ended. Keep that Timeout short, and above the server's slowest
// answer.
//
// memcachedstore does not import pgflight; it implements [pgflight.Cache],
// [pgflight.Deleter] and [pgflight.BatchCache] by their method sets alone.
//
// [pgflight.Cache]: https://pkg.go.dev/github.com/pgflight/pgflight#Cache
// [pgflight.Deleter]: https://pkg.go.dev/github.com/pgflight/pgflight#Deleter
// [pgflight.BatchCache]: https://pkg.go.dev/github.com/pgflight/pgflight#BatchCache
package memcachedstore
