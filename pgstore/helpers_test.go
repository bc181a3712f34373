package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pgstore"
)

// newPool returns a pool of the shared test server with room for maxConns
// connections, closed when tb ends.
func newPool(tb testing.TB, maxConns int) *pgxpool.Pool {
	tb.Helper()
	return poolOf(tb, testserver.PostgresURL(tb), maxConns)
}

// poolOf returns a pool of url with pgx's defaults but maxConns, closed
// when tb ends.
func poolOf(tb testing.TB, url string, maxConns int) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = int32(maxConns)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// freshTable returns the name of a table that does not exist yet, and
// drops it when tb ends.
func freshTable(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	name := fmt.Sprintf("pgstore_test_%016x", rand.Uint64())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "drop table if exists "+pgx.Identifier{name}.Sanitize()); err != nil {
			tb.Errorf("cleanup: drop table %s: %v", name, err)
		}
	})
	return name
}

// newStore returns a Store on a fresh table of pool, with the janitor off
// unless opts turn it on, closed when tb ends.
func newStore(tb testing.TB, pool *pgxpool.Pool, opts ...pgstore.Option) (*pgstore.Store, string) {
	tb.Helper()
	table := freshTable(tb, pool)
	opts = append([]pgstore.Option{pgstore.WithTable(table), pgstore.WithSweepInterval(-1)}, opts...)
	s, err := pgstore.New(pool, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, table
}

// count returns the number of rows of table, expired or not.
func count(tb testing.TB, pool *pgxpool.Pool, table string) int64 {
	tb.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), "select count(*) from "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// expire makes every row of table whose key starts with prefix expired a
// second ago on the server's clock, without waiting for its TTL.
func expire(tb testing.TB, pool *pgxpool.Pool, table, prefix string) {
	tb.Helper()
	sql := "update " + pgx.Identifier{table}.Sanitize() +
		" set expires_at = now() - interval '1 second' where substring(key for $2) = $1"
	if _, err := pool.Exec(context.Background(), sql, []byte(prefix), len(prefix)); err != nil {
		tb.Fatal(err)
	}
}
