package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// GetMany returns the values stored under keys, in order, with one GET per
// key sent in one pipeline: one round trip on a single node, one per node
// with Redis Cluster (MGET would fail across hash slots). A nil value is a
// miss.
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

// getMany sends GetMany's pipeline and reads its replies.
func (s *Store) getMany(ctx context.Context, keys []string) ([][]byte, error) {
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
