package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// pgflightC is pgflight with redisstore and pglock, as a new user
// configures them: pglock.New(pool) with pglock's default options, on the
// worker's pool, which has pgxpool's default config (see dial), and every
// pgflight setting at its default, unless the locker or the staleness says
// otherwise.
type pgflightC struct {
	g       *pgflight.Group
	l       *pglock.Locker
	timeout time.Duration // if > 0, every call's deadline (pgflight-deadline)
}

// The lockers pgflight can run with.
const (
	lockPG          = iota // pglock, its default mode
	lockPGTx               // pglock in transaction mode (pglock.WithTransactionMode)
	lockLocal              // the in-process locker
	lockFollowTwice        // pglock behind followTwice
)

// How long pgflight serves a value.
const (
	fresh            = iota // only while fresh: the default
	serveStale              // then stale for d.stale, while one process refreshes it (Config.StaleTTL)
	serveStaleXFetch        // the same, and refresh early by XFetch with β = 1 (Config.EarlyRefresh)
)

// newPgflight returns pgflight on d, with the locker lock says, serving
// values as staleness says.
func newPgflight(d *deps, lock, staleness int) (*pgflightC, error) {
	cfg := pgflight.Config{
		Cache:     redisstore.New(d.rdb),
		Namespace: d.prefix,
		TTL:       d.ttl,
		Logger:    slog.New(d.warn),
	}
	switch staleness {
	case serveStale:
		cfg.StaleTTL = d.stale
	case serveStaleXFetch:
		cfg.StaleTTL, cfg.EarlyRefresh = d.stale, 1
	}
	var l *pglock.Locker
	switch lock {
	case lockPG:
		l = pglock.New(d.pool)
		cfg.Locker = l
	case lockPGTx:
		l = pglock.New(d.pool, pglock.WithTransactionMode())
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

// warmLockID is the first of the advisory lock ids that workers take to
// warm pglock up, one each (warmLockID + the worker's index). A key's lock
// id is a 64-bit hash, so a key shares one of them only by a chance of
// about 2^-60.
const warmLockID = math.MinInt64

// warmUp takes and releases one lock, so that pglock has opened its
// connection before the measurement, as in a running service: its lock
// session by default, a pool connection in transaction mode.
func (c *pgflightC) warmUp(ctx context.Context, index int) error {
	if c.l == nil {
		return nil
	}
	unlock, err := c.l.Lock(ctx, warmLockID+int64(index))
	if err != nil {
		return fmt.Errorf("warm up pglock: %w", err)
	}
	return unlock(ctx)
}

func (c *pgflightC) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
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
		*sum = addStats(*sum, *w.Stats, 1)
	}
	return sum
}

// addStats returns a + sign·b, field by field. Every field of Stats is a
// counter (a uint64 or a time.Duration), so this needs no update when
// Stats gains one.
func addStats(a, b pgflight.Stats, sign int) pgflight.Stats {
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(b)
	for i := range va.NumField() {
		f := va.Field(i)
		switch f.Kind() {
		case reflect.Uint64:
			if sign < 0 {
				f.SetUint(f.Uint() - vb.Field(i).Uint())
			} else {
				f.SetUint(f.Uint() + vb.Field(i).Uint())
			}
		case reflect.Int64:
			f.SetInt(f.Int() + int64(sign)*vb.Field(i).Int())
		}
	}
	return a
}
