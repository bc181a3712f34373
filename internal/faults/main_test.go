package faults_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

// patience bounds every wait for an observable state. It is a deadline for
// failing (someone hangs), never a delay for synchronising.
const patience = 30 * time.Second

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the scenarios that kill Redis cause
	// thousands, and count them in Stats instead.
	redis.SetLogger(quiet{})
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	testserver.Main(m)
}

// startPostgres starts a PostgreSQL of the test's own, closed at cleanup.
func startPostgres(tb testing.TB, settings map[string]string) *testserver.Postgres {
	tb.Helper()
	p, err := testserver.StartPostgres(testserver.PostgresOptions{Settings: settings})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// startRedis starts a Redis of the test's own, closed at cleanup.
func startRedis(tb testing.TB) *testserver.Redis {
	tb.Helper()
	r, err := testserver.StartRedis()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Error(err)
		}
	})
	return r
}

// newPool returns a pool on url, adjusted by tweaks, closed at cleanup.
func newPool(tb testing.TB, url string, tweaks ...func(*pgxpool.Config)) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// newLocker returns a pglock Locker on pool, closed at cleanup (before
// pool, which was created first): in session mode it ends the Locker's
// lock session and its goroutine.
func newLocker(tb testing.TB, pool *pgxpool.Pool, opts ...pglock.Option) *pglock.Locker {
	tb.Helper()
	l := pglock.New(pool, opts...)
	tb.Cleanup(func() { l.Close() })
	return l
}

// maxConns sets a pool's MaxConns.
func maxConns(n int32) func(*pgxpool.Config) {
	return func(cfg *pgxpool.Config) { cfg.MaxConns = n }
}

// appName sets the application_name of a pool's sessions.
func appName(name string) func(*pgxpool.Config) {
	return func(cfg *pgxpool.Config) { cfg.ConnConfig.RuntimeParams["application_name"] = name }
}

// newRedis returns a client of the Redis at url, closed at cleanup.
func newRedis(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// newGroup returns a Group, closed at cleanup, with a namespace of the
// test's own unless cfg names one.
func newGroup(tb testing.TB, cfg pgflight.Config) *pgflight.Group {
	tb.Helper()
	if cfg.Namespace == "" {
		cfg.Namespace = namespace(tb)
	}
	g, err := pgflight.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// namespace returns a namespace of the test's own.
func namespace(tb testing.TB) string {
	return strings.NewReplacer("/", ".", " ", "_").Replace(tb.Name())
}

// eventually polls cond until it holds, failing tb after patience.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("still waiting after %v until %s", patience, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Queries on pg_locks, all about advisory locks in the current database.
const (
	advisorySQL = "select count(*) from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())"
	// followersSQL counts sessions waiting in shared mode: followers in
	// transaction mode (pglock.WithTransactionMode). A follower of the
	// default lock session waits in its process and holds nothing here:
	// see awaited.
	followersSQL = advisorySQL + " and not granted and mode = 'ShareLock'"
	// holdersSQL counts exclusive locks held, by a lock session or a
	// lock's transaction.
	holdersSQL = advisorySQL + " and granted and mode = 'ExclusiveLock'"
)

// awaited returns how many callers of ls wait now for a lock that another
// holds (pglock Stats.Awaited), the observable of a wait in session mode.
func awaited(ls ...*pglock.Locker) int {
	n := 0
	for _, l := range ls {
		n += l.Stats().Awaited
	}
	return n
}

// count runs a count query on pool.
func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

// noLocksLeft waits until pg_locks shows no advisory lock, held or awaited.
// A session that pgx closed may take a moment to end on the server.
func noLocksLeft(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	eventually(tb, "pg_locks shows no advisory lock", func() bool { return count(tb, pool, advisorySQL) == 0 })
}

// measured logs durations as "measured: what: n=…, p50=…, max=…", the
// lines RELIABILITY.md quotes.
func measured(tb testing.TB, what string, ds ...time.Duration) {
	tb.Helper()
	if len(ds) == 0 {
		tb.Logf("measured: %s: no sample", what)
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	tb.Logf("measured: %s: n=%d p50=%v max=%v", what, len(s), round(s[len(s)/2]), round(s[len(s)-1]))
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}

// value returns the value that the workers and in-process tests compute for
// key: the key itself, so that a mixed-up value shows.
func value(key string) string { return "value of " + key }

// checkValue fails tb unless v is key's value, whoever computed it.
func checkValue(tb testing.TB, key, v string) {
	tb.Helper()
	if want := value(key); !strings.HasPrefix(v, want+"|") && v != want {
		tb.Errorf("Fetch(%q) = %q, want %q (by any process)", key, v, want)
	}
}

// quiet is a go-redis logger that drops everything.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
