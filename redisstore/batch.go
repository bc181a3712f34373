package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// GetMany returns the values stored under keys, in order, with one GET per
// key sent in one pipeline: one round trip on a single node, one per node
// with Redis Cluster (MGET would fail across hash slots). A nil value is a
// miss.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, s.key(k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap(ctx, "get many", err)
	}
	vals := make([][]byte, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, wrap(ctx, "get many", err)
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
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			p.Set(ctx, s.key(k), vals[i], expiry(ttls[i]))
		}
		return nil
	})
	if err != nil {
		return wrap(ctx, "set many", err)
	}
	return nil
}
