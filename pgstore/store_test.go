package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pgstore"
	"github.com/pgflight/pgflight/storetest"
)

// pgstore does not import pgflight, so it asserts its contracts here.
var (
	_ pgflight.Cache      = (*pgstore.Store)(nil)
	_ pgflight.Deleter    = (*pgstore.Store)(nil)
	_ pgflight.BatchCache = (*pgstore.Store)(nil)
)

// TestStore runs the conformance suite on the default table, created on
// demand by the first subtest.
func TestStore(t *testing.T) {
	pool := newPool(t, 20)
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		s, err := pgstore.New(pool)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestStorePgBouncer runs the conformance suite through PgBouncer in
// transaction pooling, where consecutive statements of one client run on
// different server connections and named prepared statements break. The
// pool is pgx's default, statement cache on, as a user would build it
// from the pooler's URL.
func TestStorePgBouncer(t *testing.T) {
	pg, err := testserver.StartPostgres(testserver.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Close(); err != nil {
			t.Error(err)
		}
	})
	b, err := testserver.StartPgBouncer(pg, "transaction")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	pool := poolOf(t, b.URL(), 20)
	table := freshTable(t, pool)
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		s, err := pgstore.New(pool, pgstore.WithTable(table), pgstore.WithSweepInterval(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
	s, err := pgstore.New(pool, pgstore.WithTable(table), pgstore.WithSweepInterval(-1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(t.Context()); err != nil {
		t.Errorf("Sweep through PgBouncer: %v", err)
	}
}

// TestKeyBytes checks that keys text cannot hold (NUL, invalid UTF-8) are
// stored as their exact bytes, and that long keys, incompressible ones
// and ones sharing their first 1,024 bytes, each keep their own value.
func TestKeyBytes(t *testing.T) {
	pool := newPool(t, 4)
	s, table := newStore(t, pool)
	ctx := t.Context()
	for _, k := range []string{"a\x00b", "\xff\xfe", "\x00", "\xc3\x28"} {
		if err := s.Set(ctx, k, []byte(k), time.Minute); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
		var got []byte
		sql := "select key from " + pgx.Identifier{table}.Sanitize() + " where value = $1"
		if err := pool.QueryRow(ctx, sql, []byte(k)).Scan(&got); err != nil {
			t.Fatalf("select key of %q: %v", k, err)
		}
		if string(got) != k {
			t.Errorf("stored key = %q, want %q", got, k)
		}
	}

	r := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 10<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	long := []string{string(random), string(random) + "x", string(random[:2000]), string(random[:1025]), string(random[:1024])}
	for i, k := range long {
		if err := s.Set(ctx, k, fmt.Appendf(nil, "long %d", i), time.Minute); err != nil {
			t.Fatalf("Set(long %d, %d bytes): %v", i, len(k), err)
		}
	}
	vals, err := s.GetMany(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range long {
		want := fmt.Appendf(nil, "long %d", i)
		if got, ok, err := s.Get(ctx, k); !ok || err != nil || !bytes.Equal(got, want) {
			t.Errorf("Get(long %d) = %q, %v, %v; want %q", i, got, ok, err, want)
		}
		if !bytes.Equal(vals[i], want) {
			t.Errorf("GetMany[long %d] = %q, want %q", i, vals[i], want)
		}
	}
}

// TestTable checks that WithTable accepts plain and schema-qualified
// identifiers, and refuses every other name before anything reaches the
// server, so that no name can run SQL.
func TestTable(t *testing.T) {
	pool := newPool(t, 4)
	ctx := t.Context()
	canary := freshTable(t, pool)
	if _, err := pool.Exec(ctx, "create table "+canary+" (x int)"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"",
		"a;drop table " + canary,
		canary + "; drop table " + canary + "; --",
		`a"; drop table ` + canary + `; --`,
		"a b", "a-b", "a.b.c", ".a", "a.", "1a", "ä", "a\x00", "a'", "a\"",
		strings.Repeat("a", 53),
		strings.Repeat("s", 64) + ".a",
	} {
		s, err := pgstore.New(pool, pgstore.WithTable(name))
		if err == nil {
			s.Close()
			t.Errorf("New(WithTable(%q)) succeeded, want an error", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "pgstore: new: WithTable: table ") {
			t.Errorf("New(WithTable(%q)) = %v, want a WithTable error", name, err)
		}
	}
	if n := count(t, pool, canary); n != 0 {
		t.Errorf("canary has %d rows, want 0", n)
	}

	// Valid names: a schema-qualified one and a mixed-case one (quoted, so
	// distinct from its lower case), of the longest length allowed.
	if _, err := pool.Exec(ctx, "create schema if not exists pgstore_test_schema"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(context.Background(), "drop schema pgstore_test_schema cascade") })
	for _, name := range []string{"pgstore_test_schema.Cache_" + strings.Repeat("x", 46), "pgstore_test_schema.cache"} {
		s, err := pgstore.New(pool, pgstore.WithTable(name), pgstore.WithSweepInterval(-1))
		if err != nil {
			t.Fatalf("New(WithTable(%q)): %v", name, err)
		}
		if err := s.Set(ctx, "k", []byte(name), time.Minute); err != nil {
			t.Fatalf("Set through %q: %v", name, err)
		}
	}
	var n int
	sql := "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace" +
		" where nspname = 'pgstore_test_schema' and relkind = 'r' and relpersistence = 'u'"
	if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("unlogged tables in pgstore_test_schema = %d, want 2", n)
	}
}

// TestSchemaOnDemand checks that the first statement on a missing table
// creates it, unlogged and with its expiry index, and that Schema names
// the table.
func TestSchemaOnDemand(t *testing.T) {
	pool := newPool(t, 4)
	s, table := newStore(t, pool)
	ctx := t.Context()
	if _, ok, err := s.Get(ctx, "k"); ok || err != nil {
		t.Fatalf("Get on a missing table = %v, %v; want a miss", ok, err)
	}
	var persistence string
	if err := pool.QueryRow(ctx, "select relpersistence::text from pg_class where relname = $1", table).Scan(&persistence); err != nil {
		t.Fatalf("table %s after the first Get: %v", table, err)
	}
	if persistence != "u" {
		t.Errorf("relpersistence = %q, want u (unlogged)", persistence)
	}
	var index bool
	if err := pool.QueryRow(ctx, "select to_regclass($1) is not null", table+"_expires_at").Scan(&index); err != nil || !index {
		t.Errorf("index %s_expires_at exists = %v, %v; want true", table, index, err)
	}
	if !strings.Contains(s.Schema(), `CREATE UNLOGGED TABLE IF NOT EXISTS "`+table+`"`) {
		t.Errorf("Schema() does not create %q:\n%s", table, s.Schema())
	}
}

// TestSchemaConcurrent starts many Stores on one missing table at once,
// each on its own connection: every first statement must succeed. Without
// the advisory lock around the DDL, racing CREATE ... IF NOT EXISTS fails
// with a unique violation on pg_type.
func TestSchemaConcurrent(t *testing.T) {
	const rounds, stores = 5, 8
	pool := newPool(t, stores)
	ctx := t.Context()
	for r := range rounds {
		table := freshTable(t, pool)
		// Open the connections first, so that the Stores start together.
		conns := make([]interface{ Release() }, stores)
		for i := range conns {
			c, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		for _, c := range conns {
			c.Release()
		}
		start := make(chan struct{})
		errs := make(chan error, stores)
		var wg sync.WaitGroup
		for i := range stores {
			s, err := pgstore.New(pool, pgstore.WithTable(table), pgstore.WithSweepInterval(-1))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					errs <- s.CreateSchema(ctx)
				} else {
					errs <- s.Set(ctx, fmt.Sprint(i), []byte("v"), time.Minute)
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("round %d: first statement of a Store: %v", r, err)
			}
		}
		if n := count(t, pool, table); n != stores/2 {
			t.Errorf("round %d: %d rows, want %d", r, n, stores/2)
		}
	}
}

// TestManualSchema checks that a Store made WithManualSchema runs no DDL:
// on a missing table it fails, saying what to do, and creates nothing,
// until CreateSchema.
func TestManualSchema(t *testing.T) {
	pool := newPool(t, 4)
	s, table := newStore(t, pool, pgstore.WithManualSchema())
	ctx := t.Context()
	err := s.Set(ctx, "k", []byte("v"), time.Minute)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" || !strings.Contains(err.Error(), "CreateSchema") {
		t.Fatalf("Set on a missing table = %v, want an undefined_table error naming CreateSchema", err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "select to_regclass($1) is not null", table).Scan(&exists); err != nil || exists {
		t.Fatalf("table exists after a failed Set = %v, %v; want false", exists, err)
	}
	if err := s.CreateSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSchema(ctx); err != nil {
		t.Errorf("second CreateSchema: %v", err)
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set after CreateSchema: %v", err)
	}
}

// TestExpiredIsMiss checks that a row past its expiry is a miss for Get and
// GetMany before any sweep deletes it.
func TestExpiredIsMiss(t *testing.T) {
	pool := newPool(t, 4)
	s, table := newStore(t, pool)
	ctx := t.Context()
	if err := s.SetMany(ctx, []string{"old", "live"}, [][]byte{[]byte("o"), []byte("l")}, []time.Duration{time.Hour, time.Hour}); err != nil {
		t.Fatal(err)
	}
	expire(t, pool, table, "old")
	if val, ok, err := s.Get(ctx, "old"); ok || err != nil {
		t.Errorf("Get(expired) = %q, %v, %v; want a miss", val, ok, err)
	}
	vals, err := s.GetMany(ctx, []string{"old", "live"})
	if err != nil || vals[0] != nil || string(vals[1]) != "l" {
		t.Errorf("GetMany(expired, live) = %q, %v; want [nil l]", vals, err)
	}
	if n := count(t, pool, table); n != 2 {
		t.Errorf("%d rows, want 2: the expired row stays until a sweep", n)
	}
}

// TestTTL checks the expiry Set computes on the server's clock: ttl after
// now(), rounded up to microseconds, never "no expiry" for a non-positive
// ttl, and no overflow at pgflight's 50-year cap or at the largest
// time.Duration.
func TestTTL(t *testing.T) {
	pool := newPool(t, 4)
	s, table := newStore(t, pool)
	ctx := t.Context()
	const year = 365 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		want time.Duration // expires_at - now(), as the server computes it
	}{
		{"hour", time.Hour, time.Hour},
		{"ns", time.Nanosecond, time.Microsecond},
		{"zero", 0, time.Microsecond},
		{"negative", -time.Hour, time.Microsecond},
		{"round up", time.Second + time.Nanosecond, time.Second + time.Microsecond},
		{"50 years", 50 * year, 50 * year},
		{"max", math.MaxInt64, math.MaxInt64 / time.Microsecond * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set(ctx, tc.name, []byte("v"), tc.ttl); err != nil {
				t.Fatalf("Set(ttl %v): %v", tc.ttl, err)
			}
			// Set's now() came before this statement's, by less than a minute.
			var us int64
			sql := "select (extract(epoch from (expires_at - now())) * 1000000)::bigint from " + pgx.Identifier{table}.Sanitize() + " where key = $1"
			if err := pool.QueryRow(ctx, sql, []byte(tc.name)).Scan(&us); err != nil {
				t.Fatal(err)
			}
			got := time.Duration(us) * time.Microsecond
			if got > tc.want || got < tc.want-time.Minute {
				t.Errorf("expires_at - now() = %v, want %v (less at most the time since Set)", got, tc.want)
			}
		})
	}
	if _, ok, err := s.Get(ctx, "max"); !ok || err != nil {
		t.Errorf("Get(max ttl) = %v, %v; want a hit", ok, err)
	}
}

// TestSetManyDuplicates checks that a batch that names a key twice stores
// its last value and TTL.
func TestSetManyDuplicates(t *testing.T) {
	pool := newPool(t, 4)
	s, table := newStore(t, pool)
	ctx := t.Context()
	keys := []string{"a", "b", "a", "c", "a"}
	vals := [][]byte{[]byte("a1"), []byte("b"), []byte("a2"), nil, []byte("a3")}
	ttls := []time.Duration{time.Nanosecond, time.Hour, time.Nanosecond, time.Hour, time.Hour}
	if err := s.SetMany(ctx, keys, vals, ttls); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMany(ctx, []string{"a", "b", "c", "a", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a3", "b", "", "a3"}
	for i, w := range want {
		if got[i] == nil || string(got[i]) != w {
			t.Errorf("GetMany[%d] = %q (nil: %v), want %q", i, got[i], got[i] == nil, w)
		}
	}
	if got[4] != nil {
		t.Errorf("GetMany[missing] = %q, want nil", got[4])
	}
	got[0][0] = 'x' // a duplicate key's values are two copies
	if string(got[3]) != "a3" {
		t.Errorf("GetMany returned one slice for a key given twice")
	}
	if n := count(t, pool, table); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	if err := s.SetMany(ctx, []string{"a"}, nil, nil); err == nil {
		t.Error("SetMany with 1 key and 0 values succeeded")
	}
}

// TestSetManyNoDeadlock runs batches that share keys in opposite orders at
// once. Row locks taken in batch order would deadlock, and PostgreSQL
// would abort one batch after deadlock_timeout.
func TestSetManyNoDeadlock(t *testing.T) {
	const writers, rounds, n = 4, 20, 50
	pool := newPool(t, writers)
	s, _ := newStore(t, pool)
	ctx := t.Context()
	keys := make([]string, n)
	vals := make([][]byte, n)
	ttls := make([]time.Duration, n)
	for i := range keys {
		keys[i], vals[i], ttls[i] = fmt.Sprintf("k%03d", i), []byte("v"), time.Minute
	}
	if err := s.SetMany(ctx, keys, vals, ttls); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		ks := append([]string(nil), keys...)
		if w%2 == 1 {
			for i, j := 0, len(ks)-1; i < j; i, j = i+1, j-1 {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
		wg.Go(func() {
			for range rounds {
				if err := s.SetMany(ctx, ks, vals, ttls); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("SetMany: %v", err)
	}
}

// TestContext checks that a statement blocked in the server, here by a row
// lock that another transaction holds, returns once its ctx ends, with an
// error wrapping ctx's, and that the Store works afterwards.
//
// With pgx's default context handling the client only closes its
// connection, and the server runs the statement once the lock is free: the
// entry then holds the old value or the new one, as the Cache contract
// allows. With pgconn's CancelRequestContextWatcherHandler the server
// cancels the statement too, and the entry keeps its old value.
func TestContext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool // the pool sends a cancel request when a ctx ends
	}{
		{"default", false},
		{"CancelRequest", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig(testserver.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 4
			if tc.cancel {
				cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
					return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
				}
			}
			pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			s, table := newStore(t, pool)
			testContext(t, pool, s, table, tc.cancel)
		})
	}
}

func testContext(t *testing.T, pool *pgxpool.Pool, s *pgstore.Store, table string, cancels bool) {
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "select 1 from "+pgx.Identifier{table}.Sanitize()+" where key = $1 for update", []byte("k")); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"Set", func(ctx context.Context) error { return s.Set(ctx, "k", []byte("w"), time.Minute) }},
		{"SetMany", func(ctx context.Context) error {
			return s.SetMany(ctx, []string{"k"}, [][]byte{[]byte("w")}, []time.Duration{time.Minute})
		}},
	} {
		tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := op.run(tctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a locked row with a 100 ms ctx = %v, want an error wrapping context.DeadlineExceeded", op.name, err)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "other", []byte("o"), time.Minute); err != nil {
		t.Errorf("Set after the cancelled writes: %v", err)
	}
	if got, ok, err := s.Get(ctx, "other"); !ok || err != nil || string(got) != "o" {
		t.Errorf("Get after the cancelled writes = %q, %v, %v; want o", got, ok, err)
	}
	got, ok, err := s.Get(ctx, "k")
	switch {
	case err != nil || !ok:
		t.Errorf("Get(k) = %v, %v; want v or w", ok, err)
	case cancels && string(got) != "v":
		t.Errorf("Get(k) = %q, want v: the server should have cancelled the writes", got)
	case string(got) != "v" && string(got) != "w":
		t.Errorf("Get(k) = %q, want v or w", got)
	}
}
