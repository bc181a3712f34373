package main

import (
	"context"
	"time"
)

// none is cache-aside on Redis with no coordination at all: GET, and on a
// miss compute and SET. Every caller that misses computes.
type none struct {
	d       *deps
	timeout time.Duration // if > 0, every call's deadline (none-deadline)
}

func newNone(d *deps) *none { return &none{d: d} }

func (c *none) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return cacheAside(ctx, c.d.rdb, c.d.prefix+":"+key, c.d.ttl, fn)
}
