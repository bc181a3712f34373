package pgflight

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a [Group]. The zero value of every field means its
// default, so pgflight.New(pgflight.Config{}) works with no server at all:
// an in-process memory cache and an in-process locker.
type Config struct {
	// Cache stores the computed values that every process shares.
	//
	// Default: a bounded in-process memory cache (10,000 entries), which
	// shares values only inside this process. Use memstore for a tuned
	// in-process cache, and redisstore (or another shared store) to share
	// values between processes.
	Cache Cache

	// Locker makes one process compute each key at a time. Use pglock for
	// PostgreSQL advisory locks shared by the fleet. If it also implements
	// [Follower], processes waiting for another's computation wake together.
	//
	// Default: an in-process locker, which coordinates only this Group.
	Locker Locker

	// Namespace prefixes every cache key ("namespace:key") and is part of
	// every lock id, so Groups with different namespaces never share
	// entries or locks.
	//
	// Default: "pgflight".
	Namespace string

	// TTL is how long a computed value stays fresh in the cache. WithTTL
	// overrides it per call.
	//
	// Default: 5 minutes.
	TTL time.Duration

	// Codec encodes values other than []byte and string.
	//
	// Default: JSONCodec.
	Codec Codec

	// LockWait bounds how long a flight waits for the lock, that is for
	// another process's computation of the same key. When it runs out the
	// flight computes without the cluster lock (or, with FailClosed, fails
	// with ErrLockUnavailable), and Stats counts a lock timeout.
	//
	// Default: 0, wait until the callers' contexts end.
	LockWait time.Duration

	// FailClosed makes Fetch return an error wrapping ErrLockUnavailable
	// when the Locker fails or LockWait runs out. By default Fetch fails
	// open: it computes without the cluster lock (still once per process),
	// logs a rate-limited warning and counts it in Stats.FailOpens, because
	// a cache is an efficiency device and the lock server being down should
	// not take the application down with it.
	FailClosed bool

	// Logger receives warnings: a failed Locker or Cache, an undecodable
	// entry. Warnings of each kind are rate-limited to one per 10 seconds.
	//
	// Default: slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	defaultNamespace = "pgflight"
	defaultTTL       = 5 * time.Minute
	// releaseTimeout bounds releasing a lock and storing a value computed
	// for callers that have all gone; both run without the callers'
	// cancellation (STYLE 27).
	releaseTimeout = 5 * time.Second
)

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.TTL < 0 {
		return c, fmt.Errorf("pgflight: negative TTL %v", c.TTL)
	}
	if c.LockWait < 0 {
		return c, fmt.Errorf("pgflight: negative LockWait %v", c.LockWait)
	}
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if c.TTL == 0 {
		c.TTL = defaultTTL
	}
	if c.Codec == nil {
		c.Codec = JSONCodec{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// errBadTTL is returned for a non-positive WithTTL.
var errBadTTL = errors.New("pgflight: WithTTL needs a positive duration")

// An Option changes one Fetch call.
type Option func(*callOptions)

type callOptions struct {
	ttl   time.Duration
	force bool
	err   error
}

// WithTTL sets how long the value computed by this call stays fresh,
// instead of Config.TTL. A non-positive ttl makes Fetch fail.
func WithTTL(ttl time.Duration) Option {
	return func(o *callOptions) {
		if ttl <= 0 {
			o.err = errBadTTL
		}
		o.ttl = ttl
	}
}

// WithForceRefresh makes Fetch skip the cache reads and recompute the value
// under the lock, then store it, as after an invalidation. Concurrent
// force-refreshing callers of a key in one process share one computation.
func WithForceRefresh() Option {
	return func(o *callOptions) { o.force = true }
}
