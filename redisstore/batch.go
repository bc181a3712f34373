package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// GetMany returns the values stored under keys, in order. A nil value is a
// miss. Through a *redis.Client (a single node, or Sentinel's failover
// client) it sends one MGET: one round trip. Through any other client, such
// as a *redis.ClusterClient or *redis.Ring, it sends one GET per key in one
// pipeline, which go-redis splits into one pipeline per node and sends to
// the nodes concurrently: one round trip to each node that serves a key,
// and no CROSSSLOT error, which an MGET across hash slots would get.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	var vals [][]byte
	var err error
	if s.inline(ctx) {
		vals, err = s.getMany(ctx, keys)
	} else {
		keys := slices.Clone(keys) // the caller owns keys again once GetMany returns
		vals, err = detach(ctx, func(ctx context.Context) ([][]byte, error) {
			return s.getMany(ctx, keys)
		})
	}
	if err != nil {
		return nil, wrap(ctx, "get many", err)
	}
	return vals, nil
}

// getMany sends GetMany's command, or pipeline, and reads the replies.
func (s *Store) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return [][]byte{}, nil
	}
	if s.single {
		return s.mget(ctx, keys)
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, s.key(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	vals := make([][]byte, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, err
		case b == nil:
			vals[i] = []byte{}
		default:
			vals[i] = b
		}
	}
	return vals, nil
}

// mget reads keys with one MGET, which a single node serves whatever their
// hash slots: half the time of a pipeline of GETs, and fewer allocations
// (BenchmarkGetMany).
func (s *Store) mget(ctx context.Context, keys []string) ([][]byte, error) {
	ks := keys
	if s.prefix != "" {
		ks = make([]string, len(keys))
		for i, k := range keys {
			ks[i] = s.key(k)
		}
	}
	replies, err := s.client.MGet(ctx, ks...).Result()
	if err != nil {
		return nil, err
	}
	if len(replies) != len(keys) {
		return nil, fmt.Errorf("MGET of %d keys: %d replies", len(keys), len(replies))
	}
	vals := make([][]byte, len(keys))
	for i, r := range replies {
		switch r := r.(type) {
		case nil: // a miss, or a key that holds no string
		case string:
			vals[i] = []byte(r) // non-nil even if empty
		default:
			return nil, fmt.Errorf("MGET: reply %d is a %T, want a string", i, r)
		}
	}
	return vals, nil
}

// SetMany stores vals[i] under keys[i] for ttls[i], as Set does, with one
// SET per key sent in one pipeline.
func (s *Store) SetMany(ctx context.Context, keys []string, vals [][]byte, ttls []time.Duration) error {
	if len(vals) != len(keys) || len(ttls) != len(keys) {
		return fmt.Errorf("redisstore: set many: %d keys, %d values, %d ttls", len(keys), len(vals), len(ttls))
	}
	var err error
	if s.inline(ctx) {
		err = s.setMany(ctx, keys, vals, ttls)
	} else {
		// The caller owns its slices again once SetMany returns, and the
		// pipeline may still be sending them.
		keys, vals, ttls := slices.Clone(keys), cloneAll(vals), slices.Clone(ttls)
		err = detachErr(ctx, func(ctx context.Context) error {
			return s.setMany(ctx, keys, vals, ttls)
		})
	}
	if err != nil {
		return wrap(ctx, "set many", err)
	}
	return nil
}

// setMany sends SetMany's pipeline.
func (s *Store) setMany(ctx context.Context, keys []string, vals [][]byte, ttls []time.Duration) error {
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			p.Set(ctx, s.key(k), vals[i], expiry(ttls[i]))
		}
		return nil
	})
	return err
}

// cloneAll returns a deep copy of vals, in one allocation for the bytes.
// A nil value stays nil.
func cloneAll(vals [][]byte) [][]byte {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if v != nil {
			buf = append(buf, v...)
			out[i] = buf[len(buf)-len(v) : len(buf) : len(buf)]
		}
	}
	return out
}
