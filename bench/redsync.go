package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
)

// redsyncC takes a github.com/go-redsync/redsync/v4 mutex per key on a
// miss, with its default options (8 s expiry, 32 tries, a random 50 to 250
// ms between tries), re-checks Redis, and computes only if the value is
// still missing. Every caller that misses takes the mutex itself.
type redsyncC struct {
	d  *deps
	rs *redsync.Redsync
}

func newRedsync(d *deps) *redsyncC {
	return &redsyncC{d: d, rs: redsync.New(goredis.NewPool(d.rdb))}
}

func (c *redsyncC) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	rkey := c.d.prefix + ":" + key
	v, err := c.d.rdb.Get(ctx, rkey).Result()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", err
	}
	m := c.rs.NewMutex(c.d.prefix + ":lock:" + key)
	if err := m.LockContext(ctx); err != nil {
		return "", fmt.Errorf("redsync lock: %w", err)
	}
	defer m.UnlockContext(context.WithoutCancel(ctx))
	return cacheAside(ctx, c.d.rdb, rkey, c.d.ttl, fn)
}
