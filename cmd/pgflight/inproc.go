package main

import (
	"context"
	"sync"
	"time"

	"github.com/pgflight/pgflight"
)

// runInProcess runs one mode of the demo's fallback, when PostgreSQL or
// Redis is missing: n goroutines of this process ask for one cold key at
// once, either by plain cache-aside on a map (modeNone) or through the
// embedded default, pgflight.New(pgflight.Config{}) (modePgflight).
func runInProcess(ctx context.Context, mode string, n int, compute time.Duration) (*modeResult, error) {
	const key = "report"
	cc := &computeCounter{d: compute}
	var call func() error
	switch mode {
	case modeNone:
		var m mapCache
		call = func() error {
			if _, ok := m.get(key); ok {
				return nil
			}
			v, err := cc.compute(ctx)
			if err != nil {
				return err
			}
			m.set(key, v)
			return nil
		}
	case modePgflight:
		g, err := pgflight.New(pgflight.Config{})
		if err != nil {
			return nil, err
		}
		defer g.Close()
		call = func() error {
			_, err := pgflight.Fetch(ctx, g, key, cc.compute)
			return err
		}
	}
	lat, errs, err := callTogether(n, func() error { return nil }, call)
	if err != nil {
		return nil, err
	}
	res := &modeResult{mode: mode, peakConns: -1}
	res.add(newReport(lat, errs, cc.n.Load()))
	return res, nil
}

// A mapCache is the simplest cache there is: a map behind a mutex, with no
// coordination of the computations that fill it.
type mapCache struct {
	mu sync.Mutex
	m  map[string]string
}

// get returns key's value, if set.
func (c *mapCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

// set stores v under key.
func (c *mapCache) set(key, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]string)
	}
	c.m[key] = v
}
