// Package storetest checks that a [pgflight.Cache] keeps the promises that
// pgflight relies on, against the store's real server, in the manner of
// testing/fstest.TestFS.
//
// Every cache in this module runs it, and so can a third-party one:
//
//	func TestConformance(t *testing.T) {
//		rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("REDIS_ADDR")})
//		storetest.Run(t, func(t *testing.T) pgflight.Cache {
//			return redisstore.New(rdb)
//		})
//	}
//
// # What it checks
//
// A miss is (nil, false, nil). A value comes back as it was set, whatever its
// bytes and size (empty, every byte value, 1 MiB), and replaces the previous
// one. Keys of any bytes and length (spaces, newlines, NUL, invalid UTF-8,
// 10 KiB) never share a value. An entry disappears once its TTL has passed,
// while one with a longer TTL stays. The slice Get returns belongs to the
// caller. Concurrent
// readers never see a torn value. A cancelled context gives either a result
// or an error wrapping [context.Canceled], never a wrong value. If the cache
// is a [pgflight.Deleter], Delete removes an entry and ignores a missing one.
//
// # What it needs
//
// Every subtest writes under a key prefix unique to the run, with a TTL of a
// minute or, for the one long-lived entry, an hour, and deletes its keys when
// it ends if the cache is a [pgflight.Deleter]. So one server can serve every
// subtest, every run and other tests at the same time. The TTL subtest waits
// for a 100 ms entry to expire, polling for up to ten seconds, which allows
// for stores that count expiry in whole seconds.
package storetest
