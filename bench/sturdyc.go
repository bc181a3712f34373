package main

import (
	"context"

	"github.com/viccon/sturdyc"
)

// sturdycC is github.com/viccon/sturdyc's in-process cache with its
// GetOrFetch, which coalesces the callers of a key inside one process. It
// has no shared store here: each process computes each key once per TTL,
// and a hit is a memory read. It is the in-process floor that pgflight's
// latency is measured against.
type sturdycC struct {
	c *sturdyc.Client[string]
}

// sturdyc.New's sizing: room for every key of every scenario, in 10 shards,
// evicting 10% when full.
const (
	sturdycCapacity = 20_000
	sturdycShards   = 10
	sturdycEvict    = 10
)

func newSturdyc(d *deps) *sturdycC {
	return &sturdycC{sturdyc.New[string](sturdycCapacity, sturdycShards, d.ttl, sturdycEvict)}
}

func (c *sturdycC) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	return sturdyc.GetOrFetch(ctx, c.c, key, sturdyc.FetchFn[string](fn))
}
