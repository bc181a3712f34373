package faults_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/redisstore"
)

// Scenario 1c: a release whose notification never arrives. Another client
// holds a key's lock with pg_advisory_lock on a raw connection, and releases
// it with pg_advisory_unlock alone, without pg_notify: as a notification
// lost would look, or a holder of another program. The follower waiting for
// it must be woken by its session's probe (Stats.ProbeWakes), then take the
// lock and compute, or, when the holder stored the value first, receive it.
// 5 rounds each, a fresh key each.
func TestNotificationLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	rdb := newRedis(t, rd.URL())
	obs := newPool(t, pg.URL())
	raw, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close(ctx) })
	// A Group that stores as the raw holder would, taking no lock.
	noLock := pgflight.LockerFunc(func(context.Context, int64) (func(context.Context) error, error) {
		return func(context.Context) error { return nil }, nil
	})

	for _, tc := range []struct {
		name   string
		stores bool // the raw holder stores the value before it unlocks
	}{
		{"follower computes", false},
		{"follower receives", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t)
			cache := redisstore.New(rdb)
			l := newLocker(t, newPool(t, pg.URL()))
			g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache, Locker: l})
			writer := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache, Locker: noLock})
			var computed atomic.Int64
			var wakes []time.Duration
			const rounds = 5
			for r := range rounds {
				key := fmt.Sprintf("k%d", r)
				id := pgflight.LockID(ns, key)
				if _, err := raw.Exec(ctx, "select pg_advisory_lock($1)", id); err != nil {
					t.Fatal(err)
				}
				out := fetchAsync(ctx, g, key, computes(key, &computed))
				eventually(t, "the follower waits", func() bool { return awaited(l) == 1 })
				if tc.stores {
					if _, err := pgflight.Fetch(ctx, writer, key, func(context.Context) (string, error) { return value(key), nil }); err != nil {
						t.Fatal(err)
					}
				}
				before := l.Stats()
				released := time.Now()
				var unlocked bool
				if err := raw.QueryRow(ctx, "select pg_advisory_unlock($1)", id).Scan(&unlocked); err != nil || !unlocked {
					t.Fatalf("pg_advisory_unlock = %v, %v", unlocked, err)
				}
				o := await(t, "follower", out)
				if o.err != nil || o.v != value(key) {
					t.Errorf("round %d: follower = %q, %v; want the value", r, o.v, o.err)
				}
				wakes = append(wakes, o.at.Sub(released))
				if st := l.Stats(); st.ProbeWakes == before.ProbeWakes {
					t.Errorf("round %d: probe wakes = %d, unchanged; want the probe to have woken the follower", r, st.ProbeWakes)
				}
			}
			s := g.Stats()
			if tc.stores {
				if s.Received != rounds || computed.Load() != 0 {
					t.Errorf("%d received, %d computed; want %d and 0", s.Received, computed.Load(), rounds)
				}
			} else if computed.Load() != rounds || s.FailOpens != 0 {
				t.Errorf("%d computed, %d without the lock; want %d and 0", computed.Load(), s.FailOpens, rounds)
			}
			st := l.Stats()
			t.Logf("the follower's session: %d probes, %d woke it; %d notifications (its own releases)", st.Probes, st.ProbeWakes, st.Notifications)
			measured(t, "release without notification → the follower's value ("+tc.name+")", wakes...)
			noLocksLeft(t, obs)
		})
	}
}
