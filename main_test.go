package pgflight_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	testserver.Main(m)
}

// newPool returns a pool on the shared test database, closed at cleanup.
func newPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), testserver.PostgresURL(tb))
	if err != nil {
		tb.Fatalf("pgxpool.New: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// newRedis returns a client of the shared test Redis, closed at cleanup.
func newRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(testserver.RedisURL(tb))
	if err != nil {
		tb.Fatalf("redis.ParseURL: %v", err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// namespace returns a namespace of the test's own.
func namespace(tb testing.TB) string {
	return strings.NewReplacer("/", ".", " ", "_").Replace(tb.Name()) + "." + time.Now().Format("150405.000000")
}

// newGroup returns a Group closed at cleanup, with a namespace of the
// test's own unless cfg names one.
func newGroup(tb testing.TB, cfg pgflight.Config) *pgflight.Group {
	tb.Helper()
	if cfg.Namespace == "" {
		cfg.Namespace = namespace(tb)
	}
	g, err := pgflight.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// fleetConfig returns a Config on the shared Redis and PostgreSQL, as a
// fleet would use them.
func fleetConfig(tb testing.TB) pgflight.Config {
	return pgflight.Config{
		Cache:  redisstore.New(newRedis(tb)),
		Locker: pglock.New(newPool(tb)),
	}
}

// countingCache counts the calls that reach a real Cache.
type countingCache struct {
	pgflight.Cache
	gets, sets atomic.Int64
}

func (c *countingCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c.gets.Add(1)
	return c.Cache.Get(ctx, key)
}

func (c *countingCache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	c.sets.Add(1)
	return c.Cache.Set(ctx, key, val, ttl)
}

// countingLocker counts the calls that reach a real Follower, and can run a
// hook just before each release.
type countingLocker struct {
	pgflight.Follower
	locks, follows atomic.Int64
	beforeUnlock   func()
}

func (l *countingLocker) Lock(ctx context.Context, id int64) (func(context.Context) error, error) {
	l.locks.Add(1)
	return l.wrap(l.Follower.Lock(ctx, id))
}

func (l *countingLocker) LockOrFollow(ctx context.Context, id int64) (func(context.Context) error, error) {
	l.follows.Add(1)
	return l.wrap(l.Follower.LockOrFollow(ctx, id))
}

func (l *countingLocker) wrap(unlock func(context.Context) error, err error) (func(context.Context) error, error) {
	if unlock == nil || l.beforeUnlock == nil {
		return unlock, err
	}
	return func(ctx context.Context) error {
		l.beforeUnlock()
		return unlock(ctx)
	}, err
}

func (l *countingLocker) calls() int64 { return l.locks.Load() + l.follows.Load() }

// lockOnly hides a Locker's Follower method, so Fetch queues for the lock.
type lockOnly struct{ pgflight.Locker }

// awaited returns how many ids the followers of l, a *pglock.Locker, await
// now: in pglock's session mode a wait holds nothing in pg_locks but
// a follow marker.
func awaited(l pgflight.Locker) int {
	if lo, ok := l.(lockOnly); ok {
		l = lo.Locker
	}
	return l.(*pglock.Locker).Stats().Awaited
}

// advisoryLocks returns how many advisory locks (held or awaited) the test
// database shows, from any session.
func advisoryLocks(tb testing.TB, pool *pgxpool.Pool) int {
	tb.Helper()
	return countLocks(tb, pool, "")
}

// markerLocks returns how many of those are pglock's follow markers (the
// two-int4 key space).
func markerLocks(tb testing.TB, pool *pgxpool.Pool) int {
	tb.Helper()
	return countLocks(tb, pool, " and objsubid = 2")
}

// countLocks counts the database's advisory locks that also meet cond.
func countLocks(tb testing.TB, pool *pgxpool.Pool, cond string) int {
	tb.Helper()
	var n int
	err := pool.QueryRow(context.Background(),
		"select count(*) from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())"+cond).Scan(&n)
	if err != nil {
		tb.Fatalf("count advisory locks: %v", err)
	}
	return n
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closer returns a func that closes ch once, and closes it at tb's cleanup
// if the test ends first: a computation that waits for ch must not hold the
// Group's Close, and so the test, when a check fails before it is released.
// Call it after the Groups are made, so its cleanup runs before theirs.
func closer(tb testing.TB, ch chan struct{}) func() {
	f := sync.OnceFunc(func() { close(ch) })
	tb.Cleanup(f)
	return f
}

// run starts n goroutines running f and waits for them.
func run(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

var errBoom = errors.New("boom")
