package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"

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

// warnings is a slog.Handler that keeps the distinct messages logged, with
// their error, so that the worker can report them (pgflight rate-limits its
// warnings, so this is a sample, not a count).
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.seen, msg) && len(w.seen) < 20 {
		w.seen = append(w.seen, msg)
	}
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
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
