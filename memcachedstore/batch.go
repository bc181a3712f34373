package memcachedstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// GetMany returns the values stored under keys, in order, with one
// multi-get per server (gomemcache's GetMulti: one "gets" command for all
// the keys a server holds, the servers asked at once). A nil value is a
// miss; a stored empty value is a non-nil empty slice. Each returned slice
// belongs to the caller, even where keys repeat a key.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = itemKey(k)
	}
	items, err := call(ctx, func() (map[string]*memcache.Item, error) { return s.client.GetMulti(ks) })
	if err != nil {
		return nil, fmt.Errorf("memcachedstore: get many: %w", err)
	}
	vals := make([][]byte, len(keys))
	seen := make(map[string]bool, len(items))
	for i, k := range ks {
		it := items[k]
		switch {
		case it == nil:
		case seen[k]:
			vals[i] = bytes.Clone(it.Value) // not shared with the first index
		default:
			seen[k] = true
			vals[i] = it.Value
		}
	}
	return vals, nil
}

// SetMany stores vals[i] under keys[i] for ttls[i], as Set does, one key
// after the other: gomemcache has no multi-set, so it costs one round trip
// per key.
//
// A value that does not fit in a memcached item is not stored, and the
// others are; SetMany then returns an error that holds a [*TooLargeError]
// for each such value. A failure of the server stops SetMany at that key,
// and the later keys keep their previous values.
func (s *Store) SetMany(ctx context.Context, keys []string, vals [][]byte, ttls []time.Duration) error {
	if len(vals) != len(keys) || len(ttls) != len(keys) {
		return fmt.Errorf("memcachedstore: set many: %d keys, %d values, %d ttls", len(keys), len(vals), len(ttls))
	}
	var errs []error
	items := make([]*memcache.Item, 0, len(keys))
	detached := ctx.Done() != nil
	for i, k := range keys {
		it, err := s.item(k, vals[i], ttls[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("memcachedstore: set many: key %d: %w", i, err))
			continue
		}
		if detached {
			it.Value = bytes.Clone(it.Value) // the caller owns vals again once SetMany returns
		}
		items = append(items, it)
	}
	err := callErr(ctx, func() error {
		var errs []error
		for _, it := range items {
			if err := s.set(it); err != nil {
				if !errors.Is(err, ErrTooLarge) {
					return errors.Join(append(errs, err)...)
				}
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("memcachedstore: set many: %w", err))
	}
	return errors.Join(errs...)
}
