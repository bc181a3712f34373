package pgflight

import (
	"fmt"
	"log/slog"
	"math"
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
	// entries or locks. It is 1 to 128 bytes of printable ASCII other than
	// space and ':' (New refuses others): since a namespace holds no ':',
	// the cache key "site:user:42" can only be key "user:42" of namespace
	// "site". Use '.', '/' or '-' to structure namespaces ("site.user").
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

	// StaleTTL is how long an entry may still be served after it stops
	// being fresh. A caller that finds a stale entry gets it at once, and
	// the Group starts one background refresh of the key (at most one per
	// key per process; across processes the refresh takes the lock with a
	// try, so if another process is refreshing, it does nothing). The
	// cache keeps each entry for TTL + StaleTTL. WithStaleTTL overrides it
	// per call.
	//
	// Default: 0, an entry is served only while fresh.
	StaleTTL time.Duration

	// EarlyRefresh enables probabilistic early refresh (XFetch: Vattani,
	// Chierichetti and Lowenstein, VLDB 2015) with this β. A fresh hit
	// starts the background refresh described at StaleTTL when
	//
	//	now − δ·β·ln(U) ≥ freshUntil
	//
	// where U is uniform in (0, 1] and δ is how long the value's last
	// computation took (stored in the entry). Popular keys with slow
	// computations are thus refreshed shortly before they expire, by one
	// caller in the fleet, and no caller ever waits for them. β > 1
	// refreshes earlier; 1 is the paper's optimum. WithEarlyRefresh
	// overrides it per call.
	//
	// Default: 0, off.
	EarlyRefresh float64

	// MissingTTL is how long a "missing" result is cached: when fn returns
	// an error wrapping ErrMissing, Fetch stores a negative entry, and
	// callers in any process get an error wrapping ErrMissing, without
	// calling fn, until it expires. Other errors are never cached.
	//
	// Default: 30 seconds.
	MissingTTL time.Duration

	// TTLJitter spreads expiry: each stored value stays fresh for its TTL
	// times a random factor in [1 − TTLJitter, 1 + TTLJitter], so values
	// computed together do not expire together. It must be in [0, 1).
	//
	// Default: 0, no jitter.
	TTLJitter float64

	// RefreshTimeout bounds each background refresh (stale or early).
	//
	// Default: 1 minute.
	RefreshTimeout time.Duration

	// MaxRefreshes caps the background refreshes one Group runs at once;
	// a stale hit beyond the cap serves the stale value and starts none.
	//
	// Default: 64.
	MaxRefreshes int

	// Logger receives warnings: a failed Locker or Cache, an undecodable
	// entry. Warnings of each kind are rate-limited to one per 10 seconds.
	//
	// Default: slog.Default().
	Logger *slog.Logger

	// FailSafe keeps the last value of a key for this long after its
	// computation, past its fresh time and stale window, to serve when fn
	// fails: a Fetch whose fn returns an error (or panics) then returns the
	// kept value with a nil error instead, counts it in Stats.FailSafes,
	// logs, and marks the value fresh again for FailSafeThrottle, so that
	// the failing source is asked again only once per throttle for the
	// fleet, not by every call. Errors wrapping ErrMissing are answers, not
	// failures. The cache keeps every entry for at least FailSafe. A kept
	// value is never served while fn succeeds. FetchMany does not use it.
	//
	// Default: 0, off.
	FailSafe time.Duration

	// FailSafeThrottle is how long a value served by FailSafe stays fresh
	// before fn is tried again.
	//
	// Default: 30 seconds.
	FailSafeThrottle time.Duration

	// Local is an in-process tier in front of Cache (memstore.New with a
	// size bound), so that a hit costs no round trip. Each fresh value read
	// from Cache or computed is kept in it for at most LocalTTL. It must
	// implement [Deleter] and [Clearer], and serve this Group alone.
	//
	// Copies stay coherent across the fleet through the Locker, which must
	// then be a [Broadcaster] (pglock in its default session mode) or the
	// default in-process Locker (the tier is then simply per process): every
	// value stored and every Delete is broadcast to the Groups of the
	// namespace in every process, which drop their copy. Give every process
	// of a namespace the same setting: a process without Local does not
	// broadcast its stores. See the README's section on invalidation for
	// the staleness bounds.
	//
	// Default: nil, no local tier.
	Local Cache

	// LocalTTL bounds how long a copy stays in Local, whatever the value's
	// own TTL: it bounds the staleness of a copy when broadcasts cannot
	// reach this process (PostgreSQL down).
	//
	// Default: 1 minute.
	LocalTTL time.Duration

	// Observer is told of every hit, flight, lock wait, computation,
	// store and refresh, for metrics and traces (see [Observer]).
	//
	// Default: nil, nothing is observed, at no cost.
	Observer Observer
}

// Defaults.
const (
	defaultNamespace        = "pgflight"
	defaultTTL              = 5 * time.Minute
	defaultLocalTTL         = time.Minute
	defaultFailSafeThrottle = 30 * time.Second
	defaultMissingTTL       = 30 * time.Second
	defaultRefreshTimeout   = time.Minute
	defaultMaxRefreshes     = 64
	// releaseTimeout bounds releasing a lock and storing a value computed
	// for callers that have all gone; both run without the callers'
	// cancellation (STYLE 27).
	releaseTimeout = 5 * time.Second
)

// MaxTTL is the longest duration pgflight accepts for TTL, StaleTTL and
// MissingTTL, in Config and in options: an entry's fresh and stale times
// are nanosecond timestamps, and with jitter and a stale window a longer
// TTL would overflow them (and quietly turn caching off).
const MaxTTL = 50 * 365 * 24 * time.Hour

// checkDuration reports whether d, the value of the setting named name, is
// in [0, MaxTTL] (or (0, MaxTTL] if positive).
func checkDuration(name string, d time.Duration, positive bool) error {
	switch {
	case d < 0 || positive && d == 0:
		return fmt.Errorf("%s: %v, want a positive duration", name, d)
	case d > MaxTTL:
		return fmt.Errorf("%s: %v exceeds MaxTTL (50 years)", name, d)
	}
	return nil
}

// withDefaults validates c and fills in its defaults. Each message names
// one field.
func (c Config) withDefaults() (Config, error) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TTL", c.TTL}, {"StaleTTL", c.StaleTTL}, {"MissingTTL", c.MissingTTL}, {"LockWait", c.LockWait}, {"RefreshTimeout", c.RefreshTimeout}, {"LocalTTL", c.LocalTTL}, {"FailSafe", c.FailSafe}, {"FailSafeThrottle", c.FailSafeThrottle}} {
		if d.v < 0 {
			return c, fmt.Errorf("pgflight: %s: negative duration %v", d.name, d.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TTL", c.TTL}, {"StaleTTL", c.StaleTTL}, {"MissingTTL", c.MissingTTL}, {"LocalTTL", c.LocalTTL}, {"FailSafe", c.FailSafe}, {"FailSafeThrottle", c.FailSafeThrottle}} {
		if err := checkDuration(d.name, d.v, false); err != nil {
			return c, fmt.Errorf("pgflight: %w", err)
		}
	}
	if c.MaxRefreshes < 0 {
		return c, fmt.Errorf("pgflight: MaxRefreshes: %d, want 0 (the default) or more", c.MaxRefreshes)
	}
	if !(c.EarlyRefresh >= 0) || math.IsInf(c.EarlyRefresh, 0) {
		return c, fmt.Errorf("pgflight: EarlyRefresh: %v, want a finite number >= 0", c.EarlyRefresh)
	}
	if !(c.TTLJitter >= 0 && c.TTLJitter < 1) {
		return c, fmt.Errorf("pgflight: TTLJitter: %v, want a number in [0, 1)", c.TTLJitter)
	}
	if c.MissingTTL == 0 {
		c.MissingTTL = defaultMissingTTL
	}
	if c.FailSafeThrottle == 0 {
		c.FailSafeThrottle = defaultFailSafeThrottle
	}
	if c.RefreshTimeout == 0 {
		c.RefreshTimeout = defaultRefreshTimeout
	}
	if c.MaxRefreshes == 0 {
		c.MaxRefreshes = defaultMaxRefreshes
	}
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if err := checkNamespace(c.Namespace); err != nil {
		return c, err
	}
	if c.TTL == 0 {
		c.TTL = defaultTTL
	}
	if c.Codec == nil {
		c.Codec = JSONCodec{}
	}
	if c.Local != nil {
		if _, ok := c.Local.(Deleter); !ok {
			return c, fmt.Errorf("pgflight: Local: %T cannot delete (memstore can)", c.Local)
		}
		if _, ok := c.Local.(Clearer); !ok {
			return c, fmt.Errorf("pgflight: Local: %T cannot clear (memstore can)", c.Local)
		}
		if _, ok := c.Locker.(Broadcaster); !ok && c.Locker != nil {
			return c, fmt.Errorf("pgflight: Local: the Locker, %T, cannot broadcast, so other processes' copies would never be dropped: use pglock (session mode) or no Locker", c.Locker)
		}
		if c.LocalTTL == 0 {
			c.LocalTTL = defaultLocalTTL
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// An Option changes one Fetch call.
type Option func(*callOptions)

type callOptions struct {
	reread bool // a re-read in the same flight: its decode errors were counted
	ttl    time.Duration
	stale  time.Duration
	beta   float64
	force  bool
	tags   []string // WithTags
	sync   bool     // WithConsistentRead
	err    error
}

// again returns o for a re-read of the key in the same flight or batch.
func (o callOptions) again() callOptions {
	o.reread = true
	return o
}

// options returns the call options for opts over g's defaults. Only a call
// with options pays for them: applying one takes o's address.
func (g *Group) options(opts []Option) callOptions {
	o := callOptions{ttl: g.cfg.TTL, stale: g.cfg.StaleTTL, beta: g.cfg.EarlyRefresh}
	if len(opts) > 0 {
		o = applyOptions(o, opts)
	}
	return o
}

func applyOptions(o callOptions, opts []Option) callOptions {
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithTTL sets how long the value computed by this call stays fresh,
// instead of Config.TTL. A ttl that is not in (0, MaxTTL] makes Fetch fail.
func WithTTL(ttl time.Duration) Option {
	return func(o *callOptions) {
		if err := checkDuration("WithTTL", ttl, true); err != nil {
			o.err = err
		}
		o.ttl = ttl
	}
}

// WithStaleTTL sets how long the value may be served stale after it stops
// being fresh, for this call, instead of Config.StaleTTL.
func WithStaleTTL(stale time.Duration) Option {
	return func(o *callOptions) {
		if err := checkDuration("WithStaleTTL", stale, false); err != nil {
			o.err = err
		}
		o.stale = stale
	}
}

// WithEarlyRefresh sets the XFetch β for this call, instead of
// Config.EarlyRefresh; 0 turns early refresh off.
func WithEarlyRefresh(beta float64) Option {
	return func(o *callOptions) {
		if !(beta >= 0) || math.IsInf(beta, 0) {
			o.err = fmt.Errorf("WithEarlyRefresh: %v, want a finite number >= 0", beta)
		}
		o.beta = beta
	}
}

// WithForceRefresh makes Fetch skip the cache reads and recompute the value
// under the lock, then store it, as after an invalidation. Concurrent
// force-refreshing callers of a key in one process share one computation.
func WithForceRefresh() Option {
	return func(o *callOptions) { o.force = true }
}
