package main

import "context"

// none is cache-aside on Redis with no coordination at all: GET, and on a
// miss compute and SET. Every caller that misses computes.
type none struct{ d *deps }

func newNone(d *deps) *none { return &none{d} }

func (c *none) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	return cacheAside(ctx, c.d.rdb, c.d.prefix+":"+key, c.d.ttl, fn)
}
