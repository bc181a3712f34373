package memstore

import (
	"context"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultMaxBytes is the capacity of a Store made without [WithMaxBytes]:
// 64 MiB of keys and values.
const DefaultMaxBytes = 64 << 20

// A Store is an in-process cache of byte values with a per-entry TTL and a
// capacity in bytes. It is safe for concurrent use by multiple goroutines.
//
// Create a Store with [New]; the zero value is not usable.
type Store struct {
	cache *otter.Cache[string, entry]
}

// entry is what otter holds: the value, and the ttl that otter's expiry
// calculator reads back when the entry is written.
type entry struct {
	val []byte
	ttl time.Duration
}

// New returns an empty Store configured by opts.
//
// otter runs a goroutine that removes expired entries once a second, and
// short-lived goroutines for maintenance after writes. [Store.Close] stops
// the first; it also stops by itself once the Store is garbage.
func New(opts ...Option) *Store {
	cfg := config{maxBytes: DefaultMaxBytes}
	for _, o := range opts {
		o(&cfg)
	}
	return &Store{cache: otter.Must(&otter.Options[string, entry]{
		MaximumWeight:    uint64(cfg.maxBytes),
		Weigher:          weigh,
		ExpiryCalculator: otter.ExpiryWritingFunc(expiresAfter),
	})}
}

// Get returns a copy of the value stored under key, or ok == false if there
// is none or it has expired. The error is always nil: ctx is unused, since
// Get never blocks.
func (s *Store) Get(ctx context.Context, key string) (val []byte, ok bool, err error) {
	e, ok := s.cache.GetIfPresent(key)
	if !ok {
		return nil, false, nil
	}
	return clone(e.val), true, nil
}

// View returns the value stored under key without copying it, for
// pgflight's local tier ([pgflight.Viewer]): the bytes are shared and must
// not be modified. The error is always nil.
func (s *Store) View(ctx context.Context, key string) (val []byte, ok bool, err error) {
	e, ok := s.cache.GetIfPresent(key)
	if !ok {
		return nil, false, nil
	}
	return e.val, true, nil
}

// Set stores a copy of val under key for ttl, replacing any previous value
// and its ttl. A ttl ≤ 0, which pgflight never passes, leaves no entry: it
// removes any previous value. The error is always nil: ctx is unused, since
// Set never blocks.
//
// An entry whose key and value together exceed the Store's capacity is
// evicted soon after it is stored.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		// otter would take a non-positive duration to mean "keep the
		// current deadline", which for a new entry is never.
		s.cache.Invalidate(key)
		return nil
	}
	s.cache.Set(key, entry{val: clone(val), ttl: ttl})
	return nil
}

// Delete removes the entry stored under key, if any. The error is always
// nil: ctx is unused, since Delete never blocks.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.cache.Invalidate(key)
	return nil
}

// Clear removes every entry. The error is always nil.
func (s *Store) Clear(context.Context) error {
	s.cache.InvalidateAll()
	return nil
}

// Len returns the number of entries in s, counting entries that have expired
// or been evicted but are not removed yet. It is meant for tests.
func (s *Store) Len() int {
	return s.cache.EstimatedSize()
}

// Close stops the goroutine that otter runs to remove expired entries, and
// waits for it to return. The Store remains usable: an expired entry is
// still never returned, but is removed only by the maintenance otter runs
// after later reads and writes. Close always returns nil, and later calls
// do nothing.
//
// Close need not be called: the goroutine also stops once the Store is
// garbage. In a testing/synctest bubble, call Close before the bubble's
// function returns.
func (s *Store) Close() error {
	s.cache.StopAllGoroutines()
	return nil
}

// weigh gives an entry's weight for the capacity: its key and value bytes,
// at least 1 (otter never evicts an entry of weight 0 for size), at most
// what a uint32 holds.
func weigh(key string, e entry) uint32 {
	n := uint64(len(key)) + uint64(len(e.val))
	return uint32(min(max(n, 1), math.MaxUint32))
}

func expiresAfter(e otter.Entry[string, entry]) time.Duration {
	return e.Value.ttl
}

// clone returns a copy of b that is never nil, so that an empty value reads
// back as a hit with an empty, non-nil slice.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
