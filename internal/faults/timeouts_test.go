package faults_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// Scenario 12: the role that pgflight connects as has short timeouts, as a
// DBA may set them: statement_timeout, lock_timeout and
// idle_in_transaction_session_timeout 1 s (ALTER ROLE). A holder computes
// for 3 s while two processes wait, one failing open, one FailClosed. In
// transaction mode the holder's transaction idles for 3 s and the
// followers' waits are statements that block for 3 s, so any of the three
// would end them; pglock neutralises them with SET LOCAL in the statement
// that opens each lock's transaction. The lock session sets them once, with
// SET, when it connects. Either way: 1 computation, no fail-open, no
// ErrLockUnavailable, and no release failure logged.
func TestRoleTimeouts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	rdb := newRedis(t, rd.URL())
	setup := newPool(t, pg.URL())
	for _, sql := range []string{
		"alter role postgres set statement_timeout = '1s'",
		"alter role postgres set lock_timeout = '1s'",
		"alter role postgres set idle_in_transaction_session_timeout = '1s'",
	} {
		if _, err := setup.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	setup.Close()
	obs := newPool(t, pg.URL())
	var setting string
	if err := obs.QueryRow(ctx, "select current_setting('statement_timeout') || ' ' || current_setting('lock_timeout') || ' ' || current_setting('idle_in_transaction_session_timeout')").Scan(&setting); err != nil || setting != "1s 1s 1s" {
		t.Fatalf("a new session's timeouts = %q, %v; want 1s 1s 1s", setting, err)
	}
	// They bite: an ordinary statement of 1.5 s is cancelled.
	if _, err := obs.Exec(ctx, "select pg_sleep(1.5)"); err == nil {
		t.Fatal("a 1.5 s statement ran to the end; want statement_timeout to cancel it")
	}

	for _, tc := range []struct {
		name string
		opts []pglock.Option
	}{
		{"transaction", []pglock.Option{pglock.WithTransactionMode()}},
		{"session", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t)
			var logs syncBuffer // warnings: a failed release would be one
			proc := func(name string, cfg pgflight.Config) (*pgflight.Group, *pglock.Locker) {
				l := newLocker(t, newPool(t, pg.URL(), appName(name)), tc.opts...)
				cfg.Namespace, cfg.Cache, cfg.Locker = ns, redisstore.New(rdb), l
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				return newGroup(t, cfg), l
			}
			holder, _ := proc("holder", pgflight.Config{})
			open, openL := proc("open", pgflight.Config{})
			closed, closedL := proc("closed", pgflight.Config{FailClosed: true})

			var computed atomic.Int64
			held := fetchAsync(ctx, holder, "k", func(context.Context) (string, error) {
				computed.Add(1)
				time.Sleep(3 * time.Second) // the computation, 3 × every timeout
				return value("k"), nil
			})
			// The subtests share the server: count this one's lock only.
			id := pgflight.LockID(ns, "k")
			eventually(t, "the holder holds the lock", func() bool { return count(t, obs, holdersSQL+lockIDSQL, id) == 1 })
			openOut := fetchAsync(ctx, open, "k", computes("k", &computed))
			closedOut := fetchAsync(ctx, closed, "k", computes("k", &computed))
			if tc.opts != nil {
				eventually(t, "two processes wait in pg_locks", func() bool { return count(t, obs, followersSQL+lockIDSQL, id) == 2 })
			} else {
				eventually(t, "two processes wait", func() bool { return awaited(openL, closedL) == 2 })
			}
			for _, w := range []struct {
				name string
				ch   <-chan outcome
			}{{"holder", held}, {"fail-open follower", openOut}, {"FailClosed follower", closedOut}} {
				if o := await(t, w.name, w.ch); o.err != nil || o.v != value("k") {
					t.Errorf("%s = %q, %v; want the holder's value", w.name, o.v, o.err)
				}
			}
			if n := computed.Load(); n != 1 {
				t.Errorf("computations = %d, want 1", n)
			}
			for _, g := range []*pgflight.Group{holder, open, closed} {
				if s := g.Stats(); s.FailOpens != 0 {
					t.Errorf("%d fail-opens, want 0", s.FailOpens)
				}
			}
			// Close waits for the flights' releases, whose failures would
			// be logged.
			for _, g := range []*pgflight.Group{holder, open, closed} {
				g.Close()
			}
			eventually(t, "no lock is left on the key", func() bool { return count(t, obs, advisorySQL+lockIDSQL, id) == 0 })
			if logs.Len() > 0 {
				t.Errorf("warnings logged, want none:\n%s", logs.String())
			}
		})
	}
}
