package faults_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/redisstore"
)

// discard is a logger for Groups whose warnings are expected.
var discard = slog.New(slog.DiscardHandler)

// lockIDSQL narrows a pg_locks query to one lock id, $1.
const lockIDSQL = " and ((classid::bigint << 32) | objid::bigint) = $1"

// Scenario 3: PostgreSQL is unreachable when the Groups start, then comes
// up. Meanwhile a fail-open Group computes every miss without the cluster
// lock and counts it, and a FailClosed one returns ErrLockUnavailable
// without computing. Once the server answers, the same Groups take the
// cluster lock again, and share work.
func TestPostgresUnreachableAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	ns := namespace(t)
	cache := redisstore.New(newRedis(t, rd.URL()))
	open := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache, Locker: newLocker(t, newPool(t, pg.URL())), Logger: discard})
	closed := newGroup(t, pgflight.Config{Namespace: ns + ".closed", Cache: cache, Locker: newLocker(t, newPool(t, pg.URL())), FailClosed: true, Logger: discard})

	const n = 10
	var latencies []time.Duration
	for i := range n {
		key := fmt.Sprintf("down-%d", i)
		start := time.Now()
		v, err := pgflight.Fetch(ctx, open, key, func(context.Context) (string, error) { return value(key), nil })
		latencies = append(latencies, time.Since(start))
		if err != nil || v != value(key) {
			t.Fatalf("fail-open Fetch while PostgreSQL is down = %q, %v; want %q", v, err, value(key))
		}
		_, err = pgflight.Fetch(ctx, closed, key, func(context.Context) (string, error) {
			t.Error("FailClosed Group computed without the lock")
			return "", nil
		})
		if !errors.Is(err, pgflight.ErrLockUnavailable) {
			t.Fatalf("FailClosed Fetch while PostgreSQL is down: %v, want ErrLockUnavailable", err)
		}
	}
	if s := open.Stats(); s.FailOpens != n || s.Computations != n {
		t.Errorf("fail-open stats while down: %d fail-opens, %d computations; want %d each", s.FailOpens, s.Computations, n)
	}
	measured(t, "Fetch on a miss while PostgreSQL refuses connections (fail open)", latencies...)

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	obs := newPool(t, pg.URL())
	// Poll with fresh keys until a computation runs under the cluster lock,
	// as pg_locks shows it from inside fn.
	for i := 0; ; i++ {
		key := fmt.Sprintf("up-%d", i)
		locked := false
		v, err := pgflight.Fetch(ctx, open, key, func(ctx context.Context) (string, error) {
			var n int
			err := obs.QueryRow(ctx, holdersSQL+lockIDSQL, pgflight.LockID(ns, key)).Scan(&n)
			locked = n == 1
			return value(key), err
		})
		if err != nil || v != value(key) {
			t.Fatalf("Fetch after PostgreSQL came back = %q, %v", v, err)
		}
		if locked {
			measured(t, "first computation under the cluster lock after PostgreSQL came back (start → lock)", time.Since(back))
			break
		}
		if time.Since(back) > patience {
			t.Fatalf("no computation took the cluster lock within %v of PostgreSQL's return", patience)
		}
	}
	before := open.Stats().FailOpens
	for i := range n {
		key := fmt.Sprintf("again-%d", i)
		if _, err := pgflight.Fetch(ctx, open, key, func(context.Context) (string, error) { return value(key), nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := pgflight.Fetch(ctx, closed, key, func(context.Context) (string, error) { return value(key), nil }); err != nil {
			t.Errorf("FailClosed Fetch after PostgreSQL came back: %v", err)
		}
	}
	if after := open.Stats().FailOpens; after != before {
		t.Errorf("fail-opens after PostgreSQL came back went from %d to %d, want no more", before, after)
	}

	// The cluster lock shares work again: a Group standing for another
	// process waits for open's computation and receives its value.
	otherLocker := newLocker(t, newPool(t, pg.URL()))
	other := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache, Locker: otherLocker})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(ctx, open, "shared", func(context.Context) (string, error) {
			<-release
			return value("shared"), nil
		})
		done <- err
	}()
	eventually(t, "open holds the lock of the shared key", func() bool {
		return count(t, obs, holdersSQL+lockIDSQL, pgflight.LockID(ns, "shared")) == 1
	})
	got := make(chan string, 1)
	go func() {
		v, err := pgflight.Fetch(ctx, other, "shared", func(context.Context) (string, error) { return "computed twice", nil })
		if err != nil {
			v = err.Error()
		}
		got <- v
	}()
	eventually(t, "the other Group follows", func() bool { return awaited(otherLocker) == 1 })
	close(release)
	if v := <-got; v != value("shared") {
		t.Errorf("other Group's Fetch = %q, want open's value", v)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
	if s := other.Stats(); s.Computations != 0 || s.Received != 1 {
		t.Errorf("other Group: %d computations, %d received; want 0 and 1", s.Computations, s.Received)
	}
	noLocksLeft(t, obs)
}
