// Package memstore is an in-process [pgflight.Cache]: values live in this
// process's memory, in an otter cache bounded by their total size.
//
// It suits a single process that wants a cache bounded in bytes, and tests
// that need no server. Processes do not share it, so in a fleet each one
// computes every value once for itself; share a redisstore.Store instead to
// compute each value once across the fleet.
//
//	s := memstore.New(memstore.WithMaxBytes(256 << 20))
//	defer s.Close()
//	g, err := pgflight.New(pgflight.Config{Cache: s})
//
// # Guarantees
//
// Each entry expires after the ttl given to [Store.Set]; an expired entry is
// never returned, even before it is removed. When keys and values together
// exceed the capacity set by [WithMaxBytes], the entries least likely to be
// used again are evicted (otter's W-TinyLFU policy), so a value may vanish
// before its ttl; pgflight then computes it again. [Store.Set] and
// [Store.Get] copy values, so neither the caller of Set nor the caller of
// Get can change what the store holds.
//
// memstore does not import pgflight; it implements [pgflight.Cache] and
// [pgflight.Deleter] by their method sets alone.
//
// [pgflight.Cache]: https://pkg.go.dev/github.com/pgflight/pgflight#Cache
// [pgflight.Deleter]: https://pkg.go.dev/github.com/pgflight/pgflight#Deleter
package memstore
