package faults_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
)

// Scenario 8, transaction mode (pglock.WithTransactionMode, the mode for
// PgBouncer transaction pooling): far more concurrent distinct-key
// computations than the server's lock table could hold (3,000 keys, 500 ms
// each, from one process, against max_locks_per_transaction = 10 and
// max_connections = 20, a table of 200 locks). pglock caps its
// connections, and so its locks (one per connection); past the cap a
// flight gets ErrBusy at once and computes without the cluster lock. No caller gets an error, the lock table
// never fills, and another client inserting a row every 20 ms (and opening
// a session every 200 ms) never fails. Then another application fills the
// lock table itself: pgflight still returns values (or, FailClosed,
// ErrLockUnavailable), and uses the lock again once the table has room.
func TestLockTableExhaustion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPostgres(t, map[string]string{"max_locks_per_transaction": "10", "max_connections": "20"})
	const lockConns = 10
	pool := newPool(t, pg.URL(), maxConns(12))
	tx := pglock.WithTransactionMode()
	g := newGroup(t, pgflight.Config{Locker: newLocker(t, pool, tx, pglock.WithMaxConns(lockConns)), Logger: discard})
	gClosed := newGroup(t, pgflight.Config{Locker: newLocker(t, pool, tx, pglock.WithMaxConns(2)), FailClosed: true, Logger: discard})

	t.Run("3000 keys", func(t *testing.T) {
		p := startProbe(t, pg.URL())
		const keys = 3000
		var running, peak atomic.Int64
		lat := make([]time.Duration, keys)
		errs := make([]error, keys)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("k%d", i)
				start := time.Now()
				v, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
					n := running.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					time.Sleep(500 * time.Millisecond) // the expensive work
					running.Add(-1)
					return value(key), nil
				})
				lat[i] = time.Since(start)
				if err == nil && v != value(key) {
					err = fmt.Errorf("value %q", v)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		inserts, maxLocks, probeErrs := p.stop()

		failed := 0
		for i, err := range errs {
			if err != nil {
				failed++
				if failed <= 5 {
					t.Errorf("Fetch(k%d): %v", i, err)
				}
			}
		}
		if failed > 0 {
			t.Errorf("%d of %d callers got an error, want none", failed, keys)
		}
		for _, err := range probeErrs {
			t.Errorf("probe: %v", err)
		}
		if inserts == 0 {
			t.Error("the probe inserted nothing")
		}
		if maxLocks > lockConns {
			t.Errorf("the probe saw %d advisory locks at once, want at most the cap, %d", maxLocks, lockConns)
		}
		s := g.Stats()
		if s.Computations != keys || s.FailOpens == 0 {
			t.Errorf("%d computations, %d without the lock; want %d, some of them without: past the cap, flights compute without the lock",
				s.Computations, s.FailOpens, keys)
		}
		// Callers past the cap do not queue for a slot: they compute at
		// once, side by side.
		if n := peak.Load(); n <= lockConns {
			t.Errorf("at most %d computations ran at once, want more than the cap (%d): callers queued behind it", n, lockConns)
		}
		t.Logf("%d computations, %d under the cluster lock, %d without (pglock.ErrBusy); peak concurrency %d; probe: %d inserts, at most %d advisory locks",
			s.Computations, s.Computations-s.FailOpens, s.FailOpens, peak.Load(), inserts, maxLocks)
		measured(t, "3000 concurrent 500 ms computations: Fetch latency", lat...)
	})

	t.Run("table filled by another client", func(t *testing.T) {
		testTableFilled(t, pg.URL(), g, gClosed)
	})
}

// testTableFilled fills the lock table of the server at url from a client
// of its own while g and gClosed run (each has fetched a key, so their
// connections are open: a new session cannot even log in once the table
// is full): g still returns values, computed without the lock, gClosed
// ErrLockUnavailable; once the table is freed, g takes the lock again.
func testTableFilled(t *testing.T, url string, g, gClosed *pgflight.Group) {
	ctx := context.Background()
	for _, g := range []*pgflight.Group{g, gClosed} {
		if _, err := pgflight.Fetch(ctx, g, "before", func(context.Context) (string, error) { return value("before"), nil }); err != nil {
			t.Fatalf("Fetch before the table fills: %v", err)
		}
	}
	fill, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer fill.Close(ctx)
	held := fillLockTable(t, fill)
	t.Logf("another client holds %d advisory locks; the table is full", held)
	v, err := pgflight.Fetch(ctx, g, "full", func(context.Context) (string, error) { return value("full"), nil })
	if err != nil || v != value("full") {
		t.Errorf("Fetch with the lock table full = %q, %v; want the value, computed without the lock", v, err)
	}
	_, err = pgflight.Fetch(ctx, gClosed, "full-closed", func(context.Context) (string, error) { return value("full-closed"), nil })
	if !errors.Is(err, pgflight.ErrLockUnavailable) {
		t.Errorf("FailClosed Fetch with the lock table full: %v, want ErrLockUnavailable", err)
	}
	t.Logf("FailClosed: %v", err)
	if _, err := fill.Exec(ctx, "rollback"); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	before := g.Stats().FailOpens
	for i := 0; ; i++ {
		key := fmt.Sprintf("freed-%d", i)
		if _, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) { return value(key), nil }); err != nil {
			t.Fatal(err)
		}
		if after := g.Stats().FailOpens; after == before {
			measured(t, t.Name()+": lock table freed → a computation under the cluster lock again", time.Since(freed))
			break
		} else {
			before = after
		}
		if time.Since(freed) > patience {
			t.Fatalf("no computation took the lock within %v of the table's freeing", patience)
		}
	}
}

// fillLockTable makes conn take advisory locks in one transaction until
// the shared lock table is full, and returns how many it holds. Each batch
// runs in a savepoint, so the batch that fails gives back only its own.
func fillLockTable(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, batch := range []int{100, 10, 1} {
		for {
			if _, err := conn.Exec(ctx, "savepoint s"); err != nil {
				t.Fatal(err)
			}
			sql := fmt.Sprintf("select count(pg_advisory_xact_lock(1, i)) from generate_series(%d, %d) i", held+1, held+batch)
			_, err := conn.Exec(ctx, sql)
			if err != nil {
				if !strings.Contains(err.Error(), "out of shared memory") {
					t.Fatalf("filling the lock table: %v", err)
				}
				if _, err := conn.Exec(ctx, "rollback to savepoint s"); err != nil {
					t.Fatal(err)
				}
				break
			}
			if _, err := conn.Exec(ctx, "release savepoint s"); err != nil {
				t.Fatal(err)
			}
			held += batch
		}
	}
	return held
}

// probe is the application's own client of the server: every 20 ms it
// inserts a row, reading in the same statement the number of advisory
// locks and a view over probeTables tables (a statement that locks more
// relations than a backend's 16 fast-path slots, so that it needs the
// shared lock table), and every 200 ms it opens a session of its own.
const probeTables = 20

// The probe's statements: probeSetupSQL creates its tables and view,
// probeSQL is its query.
var (
	probeSetupSQL = func() string {
		sql := "create table if not exists probe (at timestamptz)"
		var union []string
		for i := range probeTables {
			sql += fmt.Sprintf("; create table if not exists probe_%d (x int)", i)
			union = append(union, fmt.Sprintf("select x from probe_%d", i))
		}
		return sql + "; create or replace view probe_wide as " + strings.Join(union, " union all ")
	}()
	probeSQL = "insert into probe values (now()) returning (select count(*) from pg_locks where locktype = 'advisory'), (select count(*) from pg_locks where locktype = 'advisory' and mode = 'ExclusiveLock'), (select count(*) from probe_wide)"
)

type probe struct {
	done     chan struct{}
	finished chan struct{}
	inserts  int
	maxLocks int
	// maxExclusive is the most exclusive advisory locks seen at once;
	// maxLocks - maxExclusive are shared ones, as pglock's probes take.
	maxExclusive int
	errs         []error
}

func startProbe(t *testing.T, url string) *probe {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, probeSetupSQL); err != nil {
		t.Fatal(err)
	}
	p := &probe{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(p.finished)
		defer conn.Close(ctx)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
			var locks, exclusive int
			err := conn.QueryRow(ctx, probeSQL).Scan(&locks, &exclusive, new(int))
			if err != nil {
				p.errs = append(p.errs, fmt.Errorf("insert: %w", err))
				continue
			}
			p.inserts++
			p.maxLocks = max(p.maxLocks, locks)
			p.maxExclusive = max(p.maxExclusive, exclusive)
			if i%10 == 0 {
				c, err := pgx.Connect(ctx, url)
				if err == nil {
					err = c.QueryRow(ctx, "select 1").Scan(new(int))
					c.Close(ctx)
				}
				if err != nil {
					p.errs = append(p.errs, fmt.Errorf("new session: %w", err))
				}
			}
		}
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the probe and returns what it saw.
func (p *probe) stop() (inserts, maxLocks int, errs []error) {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.finished
	return p.inserts, p.maxLocks, p.errs
}
