package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// A computeFunc computes a value: the expensive work a cache saves.
type computeFunc func(ctx context.Context) (string, error)

// A contender is one way for a fleet to get cached values. get returns
// key's value, computing it with fn on a miss as the contender's design
// permits; it is called by many goroutines at once.
type contender interface {
	get(ctx context.Context, key string, fn computeFunc) (string, error)
}

// The contenders, in the order the report lists them. pgflight-tx is
// pgflight on pglock in transaction mode, and pgflight-stale and
// pgflight-xfetch are pgflight serving stale values, the second also with
// XFetch early refresh; they run in the scenarios that name them (see
// variants). The last two, not run unless asked for, are diagnostics:
// pgflight with its in-process locker, which tells the cost of the
// PostgreSQL coordination apart from the rest of pgflight, and pgflight
// with the takeover of follow2.go. none-deadline and pgflight-deadline,
// not run unless asked for either, are none and pgflight tuned as
// redisstore's doc recommends: a client with ContextTimeoutEnabled, and a
// deadline on every call (callTimeout), which lets redisstore wait for
// go-redis in the caller's goroutine instead of one of its own.
var contenders = []string{"none", "recipe", "singleflight", "sturdyc", "redsync", "pgflight",
	"pgflight-tx", "pgflight-stale", "pgflight-xfetch", "pgflight-local", "pgflight-follow2",
	"none-deadline", "pgflight-deadline"}

// callTimeout is the deadline of every call of none-deadline and
// pgflight-deadline, as a service's timeout per request would set it.
const callTimeout = time.Second

// withDeadline reports whether contender name gives each call a deadline,
// on a client with ContextTimeoutEnabled (deps.rdbCT).
func withDeadline(name string) bool { return name == "none-deadline" || name == "pgflight-deadline" }

// defaultContenders are the contenders that run unless -contenders says
// otherwise.
var defaultContenders = contenders[:6]

// variants maps a configuration of a contender to the contender: a
// variant runs in the scenarios that name it whenever its contender runs.
var variants = map[string]string{"pgflight-tx": "pgflight", "pgflight-stale": "pgflight", "pgflight-xfetch": "pgflight"}

// labels are the names the report gives the contenders whose own name
// would not say what they are.
var labels = map[string]string{"pgflight-tx": "pgflight (transaction mode)",
	"none-deadline": "none (deadline, ContextTimeoutEnabled)", "pgflight-deadline": "pgflight (deadline, ContextTimeoutEnabled)"}

// label returns the report's name for contender name.
func label(name string) string {
	if l, ok := labels[name]; ok {
		return l
	}
	return name
}

// usesPostgres reports whether contender name takes PostgreSQL connections.
func usesPostgres(name string) bool {
	return name == "recipe" || usesPglock(name)
}

// usesPglock reports whether contender name is pgflight on pglock.
func usesPglock(name string) bool {
	return name == "pgflight" || name == "pgflight-follow2" || name == "pgflight-deadline" || variants[name] == "pgflight"
}

// deps are a worker's connections, shared by its goroutines. Every Redis
// key a contender writes starts with prefix.
type deps struct {
	prefix string
	ttl    time.Duration
	stale  time.Duration // Config.StaleTTL of pgflight-stale and pgflight-xfetch
	rdb    *redis.Client
	rdbCT  *redis.Client // rdb's options with ContextTimeoutEnabled; nil unless a contender needs it (withDeadline)
	pool   *pgxpool.Pool // nil unless the contender uses PostgreSQL
	warn   *warnings     // receives pgflight's log
}

// dial connects to Redis, and to PostgreSQL if contender needs it, with
// the clients' default settings (go-redis: 10 per CPU; pgxpool: max(4,
// NumCPU) connections, unless j.PGPool says otherwise), naming every
// connection j.App. pgflight's pool, which only pglock uses, has
// j.PGLockPool connections when that is set; by default it is pgxpool's
// default, as a new user has it.
func dial(ctx context.Context, j job) (*deps, error) {
	d := &deps{prefix: j.Prefix, ttl: j.TTL, stale: j.StaleTTL, warn: &warnings{}}
	opt, err := redis.ParseURL(j.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opt.ClientName = j.App
	d.rdb = redis.NewClient(opt)
	if err := d.rdb.Ping(ctx).Err(); err != nil {
		d.close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	if withDeadline(j.Contender) || slices.ContainsFunc(j.Pair, withDeadline) {
		optCT := *opt
		optCT.ContextTimeoutEnabled = true
		d.rdbCT = redis.NewClient(&optCT)
		if err := d.rdbCT.Ping(ctx).Err(); err != nil {
			d.close()
			return nil, fmt.Errorf("redis: %w", err)
		}
	}
	if usesPostgres(j.Contender) || slices.ContainsFunc(j.Pair, usesPostgres) {
		cfg, err := pgxpool.ParseConfig(j.DatabaseURL)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("database url: %w", err)
		}
		cfg.ConnConfig.RuntimeParams["application_name"] = j.App
		if j.PGPool > 0 {
			cfg.MaxConns = int32(j.PGPool)
		}
		if j.PGLockPool > 0 && (usesPglock(j.Contender) || slices.ContainsFunc(j.Pair, usesPglock)) {
			cfg.MaxConns = int32(j.PGLockPool) // no contender that pairs with pgflight uses PostgreSQL
		}
		// One warm connection, as in a running service. pgflight warms
		// pglock instead (see pgflightC.warmUp), which opens what pglock
		// uses: a connection that the pool would hold idle otherwise is
		// not pglock's, and would count as a PostgreSQL connection.
		recipe := func(n string) bool { return usesPostgres(n) && !usesPglock(n) }
		if d.pool, err = pgxpool.NewWithConfig(ctx, cfg); err == nil && (recipe(j.Contender) || slices.ContainsFunc(j.Pair, recipe)) {
			err = d.pool.Ping(ctx)
		}
		if err != nil {
			d.close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
	}
	return d, nil
}

// withPrefix returns deps that share d's connections and write under
// prefix.
func (d *deps) withPrefix(prefix string) *deps {
	c := *d
	c.prefix = prefix
	return &c
}

// close closes the connections.
func (d *deps) close() {
	if d.pool != nil {
		d.pool.Close()
	}
	if d.rdbCT != nil {
		d.rdbCT.Close()
	}
	d.rdb.Close()
}

// newContender returns the contender called name, on d.
func newContender(name string, d *deps) (contender, error) {
	switch name {
	case "none":
		return newNone(d), nil
	case "recipe":
		return newRecipe(d), nil
	case "singleflight":
		return newSingleflight(d), nil
	case "sturdyc":
		return newSturdyc(d), nil
	case "redsync":
		return newRedsync(d), nil
	case "pgflight":
		return newPgflight(d, lockPG, fresh)
	case "pgflight-tx":
		return newPgflight(d, lockPGTx, fresh)
	case "pgflight-stale":
		return newPgflight(d, lockPG, serveStale)
	case "pgflight-xfetch":
		return newPgflight(d, lockPG, serveStaleXFetch)
	case "pgflight-local":
		return newPgflight(d, lockLocal, fresh)
	case "pgflight-follow2":
		return newPgflight(d, lockFollowTwice, fresh)
	case "none-deadline":
		dd := *d
		dd.rdb = d.rdbCT
		return &none{d: &dd, timeout: callTimeout}, nil
	case "pgflight-deadline":
		dd := *d
		dd.rdb = d.rdbCT
		c, err := newPgflight(&dd, lockPG, fresh)
		if err != nil {
			return nil, err
		}
		c.timeout = callTimeout
		return c, nil
	}
	return nil, fmt.Errorf("unknown contender %q (want one of %v)", name, contenders)
}

// checkContenders reports an unknown name among names.
func checkContenders(names []string) error {
	for _, n := range names {
		if !slices.Contains(contenders, n) {
			return fmt.Errorf("unknown contender %q (want one of %v)", n, contenders)
		}
	}
	return nil
}

// cacheAside reads key from Redis; on a miss it computes the value with fn
// and stores it for ttl. It is the plain pattern every contender builds on.
func cacheAside(ctx context.Context, rdb *redis.Client, key string, ttl time.Duration, fn computeFunc) (string, error) {
	v, err := rdb.Get(ctx, key).Result()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", err
	}
	if v, err = fn(ctx); err != nil {
		return "", err
	}
	return v, rdb.Set(ctx, key, v, ttl).Err()
}
