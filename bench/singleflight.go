package main

import (
	"context"

	"golang.org/x/sync/singleflight"
)

// singleflightC is golang.org/x/sync/singleflight in front of Redis, as
// go-redis/cache's Once does it: concurrent callers of a key in one process
// share one GET and, on a miss, one computation. Processes do not
// coordinate, so each one that misses computes.
type singleflightC struct {
	d *deps
	g singleflight.Group
}

func newSingleflight(d *deps) *singleflightC { return &singleflightC{d: d} }

func (c *singleflightC) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	v, err, _ := c.g.Do(key, func() (any, error) {
		return cacheAside(ctx, c.d.rdb, c.d.prefix+":"+key, c.d.ttl, fn)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}
