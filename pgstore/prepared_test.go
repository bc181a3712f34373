package pgstore_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/internal/testserver"
)

// preparedOn returns how many of the statements prepared on pool's only
// connection name table.
func preparedOn(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	sql := "select count(*) from pg_prepared_statements where strpos(statement, $1) > 0"
	if err := pool.QueryRow(t.Context(), sql, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPrepared checks that a Store uses prepared statements on a pool of
// pgx's default exec mode, and none on a pool configured otherwise.
func TestPrepared(t *testing.T) {
	for _, tc := range []struct {
		mode pgx.QueryExecMode
		want bool
	}{
		{pgx.QueryExecModeCacheStatement, true},
		{pgx.QueryExecModeExec, false},
		{pgx.QueryExecModeSimpleProtocol, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(testserver.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 1 // the Store's statements and the check share it
			cfg.ConnConfig.DefaultQueryExecMode = tc.mode
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			s, table := newStore(t, pool)
			ctx := t.Context()
			if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := s.Get(ctx, "k"); !ok || err != nil || string(got) != "v" {
				t.Fatalf("Get = %q, %v, %v; want v", got, ok, err)
			}
			if n := preparedOn(t, pool, table); (n > 0) != tc.want {
				t.Errorf("%d statements on %s prepared, want prepared: %v", n, table, tc.want)
			}
		})
	}
}

// TestPreparedPgBouncer makes PgBouncer in transaction pooling hand the
// Store's client connection a server connection that lacks the statement
// it prepared: the Store must notice and go on unprepared, with no call
// failing.
func TestPreparedPgBouncer(t *testing.T) {
	pg, err := testserver.StartPostgres(testserver.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	b, err := testserver.StartPgBouncer(pg, "transaction")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pool := poolOf(t, b.URL(), 1)
	other := poolOf(t, b.URL(), 1)
	s, _ := newStore(t, pool)
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// PgBouncer lends the server connection it got back last, the one that
	// holds the Store's statements; take it away in a transaction.
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got, ok, err := s.Get(ctx, "k"); !ok || err != nil || string(got) != "v" {
			t.Fatalf("Get through a switched server connection = %q, %v, %v; want v", got, ok, err)
		}
		if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatalf("Set through a switched server connection: %v", err)
		}
	}
}
