package memcachedstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// A Store is a cache of byte values in memcached. It is safe for concurrent
// use by multiple goroutines, as its client is.
//
// Create a Store with [New]; the zero value is not usable.
type Store struct {
	client      *memcache.Client
	maxItemSize int
}

// New returns a Store that keeps its entries in memcached through client,
// configured by opts. It sends nothing to the servers. The caller keeps
// client, and closes it when done; the Store has nothing to close.
//
// client's Timeout (default 500 ms) bounds each of its dials, writes and
// reads, and so what a call whose ctx has ended leaves running in the
// background (see the package doc). Its MaxIdleConns (default 2) should be
// at least the number of calls the process makes at once, or most calls
// dial a connection of their own.
func New(client *memcache.Client, opts ...Option) *Store {
	s := &Store{client: client, maxItemSize: DefaultMaxItemSize}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Get returns the value stored under key, or ok == false with a nil error
// if there is none. The returned slice is the one the client read for this
// call: it belongs to the caller.
func (s *Store) Get(ctx context.Context, key string) (val []byte, ok bool, err error) {
	k := itemKey(key)
	it, err := call(ctx, func() (*memcache.Item, error) { return s.client.Get(k) })
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("memcachedstore: get: %w", err)
	}
	return it.Value, true, nil
}

// Set stores val under key for at least ttl, and less than ttl + 2 s,
// replacing any previous value and its expiry; a non-positive ttl counts as
// a nanosecond, never as "no expiry" (see the package doc).
//
// A value that does not fit in a memcached item is not stored, and Set
// returns a [*TooLargeError] (see [WithMaxItemSize]). If Set fails, the key
// holds its previous value, or none, or val, never part of one.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	it, err := s.item(key, val, ttl)
	if err != nil {
		return fmt.Errorf("memcachedstore: set: %w", err)
	}
	if ctx.Done() != nil {
		it.Value = bytes.Clone(val) // the caller owns val again once Set returns
	}
	if err := callErr(ctx, func() error { return s.set(it) }); err != nil {
		return fmt.Errorf("memcachedstore: set: %w", err)
	}
	return nil
}

// Delete removes the entry stored under key. Deleting a missing key is not
// an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	k := itemKey(key)
	err := callErr(ctx, func() error { return s.client.Delete(k) })
	if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		return fmt.Errorf("memcachedstore: delete: %w", err)
	}
	return nil
}

// item returns the memcached item for val under key for ttl, or a
// [*TooLargeError] if it does not fit under the Store's item size limit.
// Its Value is val itself.
func (s *Store) item(key string, val []byte, ttl time.Duration) (*memcache.Item, error) {
	k := itemKey(key)
	if max := s.maxItemSize - len(k) - itemOverhead; len(val) > max {
		return nil, &TooLargeError{Size: len(val), Limit: s.maxItemSize, Max: max}
	}
	return &memcache.Item{Key: k, Value: val, Expiration: expiration(ttl, time.Now())}, nil
}

// tooLargeReply is what memcached answers to an item larger than its -I.
const tooLargeReply = "SERVER_ERROR object too large for cache"

// set stores it, and turns memcached's answer to a value larger than its -I
// into a [*TooLargeError]. gomemcache reports that answer only as an
// "unexpected response line" holding it, and closes the connection.
func (s *Store) set(it *memcache.Item) error {
	err := s.client.Set(it)
	if err != nil && strings.Contains(err.Error(), tooLargeReply) {
		return &TooLargeError{Size: len(it.Value), Limit: s.maxItemSize, Max: s.maxItemSize - len(it.Key) - itemOverhead, Err: err}
	}
	return err
}
