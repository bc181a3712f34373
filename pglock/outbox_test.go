package pglock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

var (
	_ pgflight.InvalidationSource = (*pglock.Locker)(nil)
	_ pglock.Execer               = pgx.Tx(nil)
	_ pglock.Execer               = (*pgx.Conn)(nil)
	_ pglock.Execer               = (*pgxpool.Pool)(nil)
)

// outboxNS returns a namespace of the test's own: the outbox table is
// shared by every test of the database.
func outboxNS(tb testing.TB) string {
	return strings.NewReplacer("/", ".", " ", "_").Replace(tb.Name()) + "." + time.Now().Format("150405.000000000")
}

// handled is a handle func that hands each delivery to a channel.
type handled struct {
	keys chan []string
	fail func(keys []string) error // nil: every delivery succeeds
}

func newHandled() *handled { return &handled{keys: make(chan []string, 100)} }

func (h *handled) handle(_ context.Context, keys []string) error {
	h.keys <- keys
	if h.fail != nil {
		return h.fail(keys)
	}
	return nil
}

// next returns the next delivery, failing tb after patience.
func (h *handled) next(tb testing.TB) []string {
	tb.Helper()
	select {
	case k := <-h.keys:
		return k
	case <-time.After(patience):
		tb.Fatalf("no invalidation delivered within %v", patience)
		return nil
	}
}

// handle registers h for ns on l until tb ends.
func handle(tb testing.TB, l *pglock.Locker, ns string, h *handled) {
	tb.Helper()
	stop, err := l.HandleInvalidations(ns, h.handle)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
}

// outboxRows returns how many rows of ns the outbox holds.
func outboxRows(tb testing.TB, db *pgxpool.Pool, ns string) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "select count(*) from pgflight_outbox where namespace = $1", ns).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// inTx runs f in a transaction of db and commits it, or rolls it back if
// rollback.
func inTx(tb testing.TB, db *pgxpool.Pool, rollback bool, f func(tx pgx.Tx) error) {
	tb.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := f(tx); err != nil {
		tb.Fatal(err)
	}
	if rollback {
		err = tx.Rollback(ctx)
	} else {
		err = tx.Commit(ctx)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// Issue 10.3: an invalidation takes effect when its transaction commits,
// with its keys' exact bytes, and its row is deleted once handled; a
// rolled-back one never reaches a handler and leaves no row.
func TestInvalidateCommitAndRollback(t *testing.T) {
	ns := outboxNS(t)
	db := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	h := newHandled()
	handle(t, newSessionLocker(t), ns, h)

	keys := []string{"user:42", "\x00\xff binary ' \\ \"{,}\"", strings.Repeat("long", 500)}
	inTx(t, db, false, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), "select 1"); err != nil { // the application's own work
			return err
		}
		return pglock.Invalidate(context.Background(), tx, ns, keys...)
	})
	if got := h.next(t); !slices.Equal(got, keys) {
		t.Errorf("handled %q, want %q", got, keys)
	}
	waitFor(t, "the handled row deleted", func() bool { return outboxRows(t, db, ns) == 0 })

	inTx(t, db, true, func(tx pgx.Tx) error { return pglock.Invalidate(context.Background(), tx, ns, "rolled back") })
	if n := outboxRows(t, db, ns); n != 0 {
		t.Errorf("rows after a rollback = %d, want 0", n)
	}
	// A later commit is delivered, and the rollback never was.
	inTx(t, db, false, func(tx pgx.Tx) error { return pglock.Invalidate(context.Background(), tx, ns, "after") })
	if got := h.next(t); !slices.Equal(got, []string{"after"}) {
		t.Errorf("handled %q after a rollback and a commit, want [after]", got)
	}
}

// Bad input is refused before anything is sent: the application's
// transaction stays usable and no row is written.
func TestInvalidateRefuses(t *testing.T) {
	db := newPool(t, 2, pgx.QueryExecModeCacheStatement)
	ns := outboxNS(t)
	cases := []struct { // the empty key first, then bad namespaces
		name, ns string
		keys     []string
	}{
		{"empty key", ns, []string{"a", ""}},
		{"empty namespace", "", []string{"a"}},
		{"namespace with space", "a b", []string{"a"}},
		{"namespace with colon", "a:b", []string{"a"}},
		{"namespace with NUL", "a\x00", []string{"a"}},
		{"namespace not ASCII", "caf\xc3\xa9", []string{"a"}},
		{"namespace too long", strings.Repeat("n", 129), []string{"a"}},
	}
	inTx(t, db, false, func(tx pgx.Tx) error {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := pglock.Invalidate(context.Background(), tx, tc.ns, tc.keys...)
				if !errors.Is(err, pglock.ErrInvalidKey) {
					t.Errorf("Invalidate = %v, want ErrInvalidKey", err)
				}
			})
		}
		l := pglock.New(db)
		for _, bad := range cases[1:] {
			if _, err := l.HandleInvalidations(bad.ns, func(context.Context, []string) error { return nil }); !errors.Is(err, pglock.ErrInvalidKey) {
				t.Errorf("%s: HandleInvalidations = %v, want ErrInvalidKey", bad.name, err)
			}
		}
		if _, err := l.HandleInvalidations(ns, nil); err == nil {
			t.Error("HandleInvalidations with a nil handle succeeded")
		}
		// A hostile namespace that is valid is a value, not SQL.
		if err := pglock.Invalidate(context.Background(), tx, ns+"');drop_table_x;--", "k"); err != nil {
			return err
		}
		return pglock.Invalidate(context.Background(), tx, ns) // no keys: nothing
	})
	if n := outboxRows(t, db, ns); n != 0 {
		t.Errorf("rows of refused calls = %d, want 0", n)
	}
	if n := outboxRows(t, db, ns+"');drop_table_x;--"); n != 1 {
		t.Errorf("rows of the quoting namespace = %d, want 1", n)
	}
}

// A namespace no process handles keeps its rows, while other namespaces'
// are handled, until a handler of it starts: the first pass (when its
// subscription is live) delivers them.
func TestInvalidateUnhandledNamespace(t *testing.T) {
	db := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	nobody, other := outboxNS(t)+".nobody", outboxNS(t)+".other"
	l := newSessionLocker(t)
	h := newHandled()
	handle(t, l, other, h)
	inTx(t, db, false, func(tx pgx.Tx) error { return pglock.Invalidate(context.Background(), tx, nobody, "k") })
	inTx(t, db, false, func(tx pgx.Tx) error { return pglock.Invalidate(context.Background(), tx, other, "k") })
	h.next(t)
	waitFor(t, "the other namespace's row deleted", func() bool { return outboxRows(t, db, other) == 0 })
	if n := outboxRows(t, db, nobody); n != 1 {
		t.Fatalf("rows of the unhandled namespace = %d, want 1", n)
	}
	late := newHandled()
	handle(t, l, nobody, late)
	if got := late.next(t); !slices.Equal(got, []string{"k"}) {
		t.Errorf("late handler got %q, want [k]", got)
	}
}

// A handle that fails leaves its row, which a later pass delivers again
// (at least once): the sweep, since nothing else is committed.
func TestInvalidateRetriesFailedHandle(t *testing.T) {
	db := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	ns := outboxNS(t)
	h := newHandled()
	var calls int
	proceed := make(chan struct{})
	h.fail = func([]string) error {
		if calls++; calls == 1 {
			return errors.New("cache down")
		}
		<-proceed // the row stays until the test has counted it
		return nil
	}
	handle(t, newSessionLocker(t, pglock.WithOutboxSweep(time.Second)), ns, h)
	inTx(t, db, false, func(tx pgx.Tx) error { return pglock.Invalidate(context.Background(), tx, ns, "k") })
	h.next(t)
	if n := outboxRows(t, db, ns); n != 1 {
		t.Errorf("rows after a failed handle = %d, want 1", n)
	}
	close(proceed)
	if got := h.next(t); !slices.Equal(got, []string{"k"}) { // at the next sweep, within 1 s
		t.Errorf("retry delivered %q, want [k]", got)
	}
	waitFor(t, "the retried row deleted", func() bool { return outboxRows(t, db, ns) == 0 })
}

// Many rows (more than one claimed batch) are all delivered, each once
// when every handle succeeds, by two processes sharing them.
func TestInvalidateManyRowsTwoHandlers(t *testing.T) {
	db := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	ns := outboxNS(t)
	h := &handled{keys: make(chan []string, 1000)}
	handle(t, newSessionLocker(t), ns, h)
	handle(t, newSessionLocker(t), ns, h)
	const n = 250
	inTx(t, db, false, func(tx pgx.Tx) error {
		for i := range n {
			if err := pglock.Invalidate(context.Background(), tx, ns, fmt.Sprint(i)); err != nil {
				return err
			}
		}
		return nil
	})
	seen := map[string]int{}
	for range n {
		seen[h.next(t)[0]]++
	}
	waitFor(t, "every row deleted", func() bool { return outboxRows(t, db, ns) == 0 })
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Errorf("key %d delivered %d times, want 1", i, c)
		}
	}
}

// Concurrent first calls on a database without the table all succeed:
// the advisory transaction lock orders their CREATE TABLEs. The database
// is a fresh schema, first in the pool's search_path.
func TestInvalidateCreatesTableConcurrently(t *testing.T) {
	schema := strings.ReplaceAll(strings.ToLower(outboxNS(t)), ".", "_")
	admin := newPool(t, 1, pgx.QueryExecModeCacheStatement)
	if _, err := admin.Exec(context.Background(), "create schema "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), "drop schema "+pgx.Identifier{schema}.Sanitize()+" cascade") })
	db := newPool(t, 8, pgx.QueryExecModeCacheStatement, func(c *pgxpool.Config) {
		c.ConnConfig.RuntimeParams["search_path"] = schema
	})
	start := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			tx, err := db.Begin(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer tx.Rollback(ctx)
			<-start
			if i == 0 {
				err = pglock.CreateOutbox(ctx, tx)
			} else {
				err = pglock.Invalidate(ctx, tx, "ns", "k")
			}
			if err == nil {
				err = tx.Commit(ctx)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent first call: %v", err)
		}
	}
	var n int
	if err := db.QueryRow(context.Background(), "select count(*) from pgflight_outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("rows = %d, want 7", n)
	}
}

// The application's transaction can go through PgBouncer in transaction
// pooling with pgx's default statement cache on; so can CreateOutbox and
// an Invalidate outside a transaction. The handler's Locker is on
// PostgreSQL directly, as it must be in session mode.
func TestInvalidatePgBouncer(t *testing.T) {
	ctx := context.Background()
	pooled, l := pgBouncerFixture(t)
	ns := outboxNS(t)
	h := newHandled()
	handle(t, l, ns, h)

	if err := pglock.CreateOutbox(ctx, pooled); err != nil {
		t.Fatalf("CreateOutbox through PgBouncer: %v", err)
	}
	for i := range 3 { // several transactions, so statements meet other server connections
		inTx(t, pooled, false, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select $1::int", i); err != nil {
				return err
			}
			return pglock.Invalidate(ctx, tx, ns, fmt.Sprint("tx", i))
		})
		if got := h.next(t); !slices.Equal(got, []string{fmt.Sprint("tx", i)}) {
			t.Errorf("handled %q, want [tx%d]", got, i)
		}
	}
	if err := pglock.Invalidate(ctx, pooled, ns, "autocommit"); err != nil {
		t.Fatalf("Invalidate on the pool through PgBouncer: %v", err)
	}
	if got := h.next(t); !slices.Equal(got, []string{"autocommit"}) {
		t.Errorf("handled %q, want [autocommit]", got)
	}
}

// outboxChildEnv names the namespace of an outbox child process: one
// whose handle claims rows and blocks until the process is killed.
const outboxChildEnv = "PGFLIGHT_OUTBOX_CHILD"

// TestOutboxChild is the child process of TestInvalidateHandlerKilled; it
// does nothing in a normal run.
func TestOutboxChild(t *testing.T) {
	ns := os.Getenv(outboxChildEnv)
	if ns == "" {
		return
	}
	cfg, err := pgxpool.ParseConfig(testserver.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "outbox-child " + ns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pglock.New(pool).HandleInvalidations(ns, func(_ context.Context, keys []string) error {
		fmt.Println("claimed", keys[0])
		select {} // until SIGKILL, its rows locked
	}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	select {}
}

// A process killed while it holds claimed rows loses nothing: PostgreSQL
// drops its transaction with its connection, and another process handles
// the rows (at least once: the killed one may have acted on some).
func TestInvalidateHandlerKilled(t *testing.T) {
	ns := outboxNS(t)
	db := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxChild$")
	cmd.Env = append(os.Environ(), outboxChildEnv+"="+ns, testserver.DatabaseURLEnv+"="+testserver.PostgresURL(t))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("child said %q, want %q", got, want)
			}
		case <-time.After(patience):
			t.Fatalf("child did not say %q within %v", want, patience)
		}
	}
	expect("ready")
	inTx(t, db, false, func(tx pgx.Tx) error { return pglock.Invalidate(context.Background(), tx, ns, "k") })
	expect("claimed k")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// The row stays; once the dead process's backend is gone, the first
	// pass of a new handler claims it.
	if n := outboxRows(t, db, ns); n != 1 {
		t.Errorf("rows after the kill = %d, want 1", n)
	}
	waitFor(t, "the killed process's connections gone", func() bool {
		var n int
		err := db.QueryRow(context.Background(), "select count(*) from pg_stat_activity where application_name = $1", "outbox-child "+ns).Scan(&n)
		return err == nil && n == 0
	})
	h := newHandled()
	handle(t, newSessionLocker(t), ns, h)
	if got := h.next(t); !slices.Equal(got, []string{"k"}) {
		t.Errorf("survivor handled %q, want [k]", got)
	}
	waitFor(t, "the row deleted", func() bool { return outboxRows(t, db, ns) == 0 })
}

// Invalidate records the invalidation of keys in the application's
// transaction: at COMMIT every process handling the namespace (pgflight's
// Groups do, through their Locker) deletes them.
func ExampleInvalidate() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, databaseURL()) // e.g. os.Getenv("DATABASE_URL")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	ns := "example." + time.Now().Format("150405.000000000")

	// What a pgflight.Group of namespace ns does at New, in every process.
	l := pglock.New(pool)
	defer l.Close()
	done := make(chan struct{})
	stop, err := l.HandleInvalidations(ns, func(ctx context.Context, keys []string) error {
		fmt.Println("delete", keys) // Group.Delete of each key
		close(done)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// The application's transaction.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "select 'update users set name = ... where id = 42'"); err != nil {
			return err
		}
		return pglock.Invalidate(ctx, tx, ns, "user:42")
	})
	if err != nil {
		log.Fatal(err)
	}
	<-done
	// Output: delete [user:42]
}

// BenchmarkInvalidate measures what Invalidate adds to the application's
// transaction (the table check, the insert and the notification, one round
// trip), beside the same transaction with a trivial statement instead.
// No handler runs: the rows are left, then deleted.
func BenchmarkInvalidate(b *testing.B) {
	db := newPool(b, 2, pgx.QueryExecModeCacheStatement)
	ns := outboxNS(b)
	b.Cleanup(func() { db.Exec(context.Background(), "delete from pgflight_outbox where namespace = $1", ns) })
	for _, bc := range []struct {
		name string
		work func(ctx context.Context, tx pgx.Tx) error
	}{
		{"select1", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "select 1", pgx.QueryExecModeSimpleProtocol)
			return err
		}},
		{"Invalidate", func(ctx context.Context, tx pgx.Tx) error { return pglock.Invalidate(ctx, tx, ns, "user:42") }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return bc.work(ctx, tx) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// pgBouncerFixture starts a PostgreSQL of its own and a PgBouncer in
// transaction pooling in front of it, and returns a pool through PgBouncer
// (pgx's defaults: the application's) and a Locker on PostgreSQL directly,
// as a lock session must be.
func pgBouncerFixture(t *testing.T) (pooled *pgxpool.Pool, l *pglock.Locker) {
	t.Helper()
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
	ctx := context.Background()
	if pooled, err = pgxpool.New(ctx, b.URL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pooled.Close)
	direct, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	l = pglock.New(direct)
	t.Cleanup(func() { l.Close() })
	return pooled, l
}
