package pgflight

import (
	"context"
	"fmt"
	"time"
)

// An EntryInfo describes one cache entry as it is stored, as [Inspect]
// reports it. Its times come from the clock of the process that wrote the
// entry.
type EntryInfo struct {
	// Key is the cache key the entry is stored under: the namespace, ':'
	// and the key ("pgflight:user:42"). It is set whether or not the entry
	// was found.
	Key string

	// Found reports whether the Cache holds an entry under Key. When it is
	// false, every field below is zero.
	Found bool

	// ComputedAt is when the value's computation ended.
	ComputedAt time.Time

	// FreshUntil is when the value stops being fresh. The entry does not
	// record its stale window (Config.StaleTTL): the Cache keeps the entry
	// for the fresh time plus the stale window, and a Group serves it stale
	// until the Cache drops it. Ask the store for its TTL (Redis PTTL) to
	// know when that is.
	FreshUntil time.Time

	// ComputeTime is how long the computation took, from fn's start to the
	// end of its encoding; early refresh (Config.EarlyRefresh) scales with
	// it. It may be 0 for a computation shorter than the writer's clock
	// resolution.
	ComputeTime time.Duration

	// Missing reports a negative entry: fn returned an error wrapping
	// ErrMissing, and Value holds that error's message. Fetch returns an
	// error wrapping ErrMissing for it without calling fn.
	Missing bool

	// Nil reports that the value was a nil []byte (Value is then empty),
	// which Fetch returns as nil rather than as an empty slice.
	Nil bool

	// Tags are the entry's tags (WithTags), each with its version when the
	// computation began; ClearVersion is the namespace's Clear version
	// then. An entry whose tag or Clear has a newer version now is a miss
	// for a Group (Inspect does not know the current versions).
	Tags         map[string]uint64
	ClearVersion uint64

	// Size is the length of the stored entry in bytes, its header included.
	Size int

	// Value is the entry's payload, exactly as stored: the Codec's output
	// (JSON by default), the bytes of a []byte or string value, or a
	// negative entry's message. For an entry that could not be decoded it
	// is the whole stored entry, undecoded.
	Value []byte
}

// Inspect reads the entry that Groups with the given namespace store for
// key in c, and decodes its envelope without decoding the value, so it
// needs neither the value's type nor its Codec. It is meant for operators
// and tests (the pgflight CLI's inspect command), not for serving values:
// it takes no lock and never writes.
//
// An empty namespace means the default, as in Config. Inspect checks
// namespace and key as [New] and [Fetch] do, and fails for either before
// touching c: a bad key with an error wrapping ErrInvalidKey.
//
// A missing entry is not an error: Inspect returns Found == false with the
// cache key. An entry that is not a pgflight envelope (damaged, forged, or
// written by a newer version) gives a *DecodeError, with Found, Size and
// Value (the raw bytes) set. A failed read gives an error wrapping the
// Cache's. ctx bounds the one Get that Inspect makes.
func Inspect(ctx context.Context, c Cache, namespace, key string) (EntryInfo, error) {
	if namespace == "" {
		namespace = defaultNamespace
	}
	if err := checkNamespace(namespace); err != nil {
		return EntryInfo{}, err
	}
	if err := checkKey(key); err != nil {
		return EntryInfo{}, err
	}
	ck := cacheKey(namespace, key)
	info := EntryInfo{Key: ck}
	b, ok, err := c.Get(ctx, ck)
	if err != nil {
		return info, fmt.Errorf("pgflight: inspect %s: cache: %w", quoteKey(ck), err)
	}
	if !ok {
		return info, nil
	}
	info.Found, info.Size = true, len(b)
	e, err := parseEntry(b)
	if err != nil {
		info.Value = b
		return info, &DecodeError{Key: ck, Err: err}
	}
	info.ComputedAt = time.Unix(0, e.computedAt)
	info.FreshUntil = time.Unix(0, e.freshUntil)
	info.ComputeTime = e.took
	info.Missing = e.flags&flagMissing != 0
	info.Nil = e.flags&flagNil != 0
	info.Value = e.payload
	info.ClearVersion = e.tags.clear()
	e.tags.each(func(tag []byte, v uint64) bool {
		if info.Tags == nil {
			info.Tags = make(map[string]uint64)
		}
		info.Tags[string(tag)] = v
		return true
	})
	return info, nil
}
