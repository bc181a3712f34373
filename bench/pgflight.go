package main

import (
	"context"
	"log/slog"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// pgflightC is pgflight with redisstore and pglock, every setting at its
// default (pgxpool's default pool, pglock's default connection cap).
type pgflightC struct {
	g *pgflight.Group
	l *pglock.Locker
}

// The lockers pgflight can run with.
const (
	lockPG          = iota // pglock
	lockLocal              // the in-process locker
	lockFollowTwice        // pglock behind followTwice
)

// newPgflight returns pgflight on d, with the locker lock says.
func newPgflight(d *deps, lock int) (*pgflightC, error) {
	cfg := pgflight.Config{
		Cache:     redisstore.New(d.rdb),
		Namespace: d.prefix,
		TTL:       d.ttl,
		Logger:    slog.New(d.warn),
	}
	var l *pglock.Locker
	switch lock {
	case lockPG:
		l = pglock.New(d.pool)
		cfg.Locker = l
	case lockFollowTwice:
		l = pglock.New(d.pool)
		cfg.Locker = followTwice{l}
	}
	g, err := pgflight.New(cfg)
	if err != nil {
		return nil, err
	}
	return &pgflightC{g: g, l: l}, nil
}

func (c *pgflightC) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	return pgflight.Fetch(ctx, c.g, key, fn)
}

// inUse reports the pool connections pglock uses right now.
func (c *pgflightC) inUse() int {
	if c.l == nil {
		return 0
	}
	return c.l.InUse()
}

// stats returns the Group's counters.
func (c *pgflightC) stats() pgflight.Stats { return c.g.Stats() }

// sumStats sums the pgflight counters of reports, or returns nil if they
// have none.
func sumStats(reports []workerReport) *pgflight.Stats {
	var sum *pgflight.Stats
	for _, w := range reports {
		if w.Stats == nil {
			continue
		}
		if sum == nil {
			sum = &pgflight.Stats{}
		}
		st := w.Stats
		sum.Hits += st.Hits
		sum.Misses += st.Misses
		sum.Computations += st.Computations
		sum.Coalesced += st.Coalesced
		sum.Received += st.Received
		sum.LockWait += st.LockWait
		sum.LockTimeouts += st.LockTimeouts
		sum.FailOpens += st.FailOpens
		sum.CacheErrors += st.CacheErrors
		sum.DecodeErrors += st.DecodeErrors
	}
	return sum
}
