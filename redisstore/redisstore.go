package redisstore

import (
	"bytes"
	"context"
	"errors"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/internal/ctxerr"
)

// A Store is a cache of byte values in Redis. It is safe for concurrent use
// by multiple goroutines, as its client is.
//
// Create a Store with [New]; the zero value is not usable.
type Store struct {
	client    redis.UniversalClient
	prefix    string
	deadlines bool // go-redis applies ctx deadlines to client's sockets
	single    bool // client is a *redis.Client: one node serves every key
}

// New returns a Store that keeps its entries in Redis through client,
// configured by opts. It sends nothing to the server. The caller keeps
// client, and closes it when done; the Store has nothing to close.
//
// Every call of the Store returns once its ctx ends, whatever client's
// options, even if the server has stalled. New reads client's options
// once: if client is a *redis.Client, *redis.ClusterClient or *redis.Ring
// with ContextTimeoutEnabled, go-redis itself stops at a ctx deadline, and
// a call with a deadline, or with a ctx that never ends, runs in the
// caller's goroutine at no extra cost. Any other call, for example through
// a client from [redis.ParseURL], sends its command from a goroutine of its
// own and returns when ctx ends; the command then finishes in the
// background, within the client's ReadTimeout (see the package doc).
func New(client redis.UniversalClient, opts ...Option) *Store {
	_, single := client.(*redis.Client)
	s := &Store{client: client, deadlines: appliesDeadlines(client), single: single}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Get returns the value stored under key with GET, or ok == false with a nil
// error if there is none. The returned slice is the reply go-redis read for
// this call, not shared with anyone: it belongs to the caller.
func (s *Store) Get(ctx context.Context, key string) (val []byte, ok bool, err error) {
	k := s.key(key)
	if s.inline(ctx) {
		val, err = s.client.Get(ctx, k).Bytes()
	} else {
		val, err = detach(ctx, func(ctx context.Context) ([]byte, error) {
			return s.client.Get(ctx, k).Bytes()
		})
	}
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap(ctx, "get", err)
	}
	return val, true, nil
}

// Set stores val under key for ttl with SET, replacing any previous value
// and its TTL. The TTL is rounded up to whole milliseconds, Redis's unit,
// and is at least 1 ms: a shorter or non-positive ttl never means "no
// expiry".
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	k, exp := s.key(key), expiry(ttl)
	var err error
	if s.inline(ctx) {
		err = s.client.Set(ctx, k, val, exp).Err()
	} else {
		val := bytes.Clone(val) // the caller owns val again once Set returns
		err = detachErr(ctx, func(ctx context.Context) error {
			return s.client.Set(ctx, k, val, exp).Err()
		})
	}
	if err != nil {
		return wrap(ctx, "set", err)
	}
	return nil
}

// Delete removes the entry stored under key with DEL. Deleting a missing key
// is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	k := s.key(key)
	var err error
	if s.inline(ctx) {
		err = s.client.Del(ctx, k).Err()
	} else {
		err = detachErr(ctx, func(ctx context.Context) error {
			return s.client.Del(ctx, k).Err()
		})
	}
	if err != nil {
		return wrap(ctx, "delete", err)
	}
	return nil
}

// wrap names op in err, and ctx's error if ctx ended (see internal/ctxerr).
func wrap(ctx context.Context, op string, err error) error {
	return ctxerr.Wrap(ctx, "redisstore", op, err)
}

// key returns the Redis key for key. Without a prefix, it is key itself, and
// costs no allocation.
func (s *Store) key(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + key
}

// expiry rounds ttl up to whole milliseconds, at least one. go-redis would
// truncate instead, and log a warning below 1 ms; given whole milliseconds it
// sends PX, or EX for whole seconds, both exact.
func expiry(ttl time.Duration) time.Duration {
	if ttl < time.Millisecond {
		return time.Millisecond
	}
	d := ttl.Truncate(time.Millisecond)
	if d < ttl && d <= math.MaxInt64-time.Millisecond {
		d += time.Millisecond
	}
	return d
}
