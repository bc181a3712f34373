package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

// holderPIDSQL returns the server pid of the session holding the exclusive
// advisory lock on id $1.
const holderPIDSQL = "select pid from pg_locks where locktype = 'advisory' and granted and mode = 'ExclusiveLock'" + lockIDSQL

// Scenario 1b: an operator ends the holder's lock session with
// pg_terminate_backend mid-computation, while the other processes wait. The
// server drops its lock and tells nobody: a survivor's probe finds the lock
// free, and it takes over and computes (2 computations in all). The holder
// computes on, unaware; its callers get its value, and its unlock reports
// the loss (Stats.SessionLosses and LocksLost, one each). Its Locker then
// opens a new session, and serves the process's next key under the lock,
// which the others follow. 3 rounds, a fresh key each.
func TestLockSessionTerminated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	ns := namespace(t)
	f := startFleet(t, 4, workerConfig{DB: pg.URL(), Redis: rd.URL(), Namespace: ns})
	obs := newPool(t, pg.URL())
	rdb := newRedis(t, rd.URL())
	lastWakes := map[int]uint64{} // each worker's Stats.ProbeWakes at its last round
	lastLost := map[int]uint64{}  // each worker's Group's Stats.LocksLost at its last round
	var takeovers, reconnects []time.Duration
	for r := range 3 {
		key := fmt.Sprintf("k%d", r)
		send(t, f.ws, command{Op: "fetch", Round: key, Keys: []string{key}, Goroutines: 3, Work: blockFirst, Timeout: patience})
		first := f.awaitComputing(t, func(ev event) bool { return ev.Key == key && ev.N == 1 })
		holder := f.worker(t, first.PID)
		survivors := except(f.ws, holder)
		f.awaitFollowers(t, survivors, obs)
		before := holder.lockStats(t)
		var pid int32
		if err := obs.QueryRow(ctx, holderPIDSQL, pgflight.LockID(ns, key)).Scan(&pid); err != nil {
			t.Fatalf("round %d: the holder's session: %v", r, err)
		}
		terminated := time.Now()
		var ok bool
		if err := obs.QueryRow(ctx, "select pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("round %d: pg_terminate_backend(%d) = %v, %v", r, pid, ok, err)
		}

		// A survivor takes over, woken by its probe.
		values, firstValue, probeWakes := survivorsRound(t, r, survivors, key, lastWakes)
		takeovers = append(takeovers, firstValue.Sub(terminated))
		if len(values) != 1 {
			t.Errorf("round %d: survivors returned %v, want one value", r, values)
		}
		if n := computations(t, rdb, ns, key); n != 2 {
			t.Errorf("round %d: computations = %d, want 2 (the holder's, then one survivor's)", r, n)
		}
		if probeWakes == 0 {
			t.Errorf("round %d: the survivors' probes woke no follower; want at least one: nobody announced the lost lock", r)
		}

		// The holder finishes; its callers get its value; its unlock
		// reports the loss.
		send(t, []*worker{holder}, command{Op: "finish", Keys: []string{key}})
		held := holder.await(t, key)
		for _, c := range held.Calls {
			if c.Err != "" {
				t.Errorf("round %d: a holder's caller got %s, want its value although its lock was lost", r, c.Err)
				continue
			}
			checkValue(t, key, c.Value)
		}
		var after = before
		eventually(t, "the holder has released", func() bool {
			after = holder.lockStats(t)
			return after.Held == 0
		})
		if d := after.SessionLosses - before.SessionLosses; d != 1 {
			t.Errorf("round %d: the holder's session losses grew by %d, want 1", r, d)
		}
		if d := after.LocksLost - before.LocksLost; d != 1 {
			t.Errorf("round %d: the holder's locks lost grew by %d, want 1 (its unlock found the lock gone)", r, d)
		}
		// Its Group counts the failed release (Stats.LocksLost) once the
		// flight has released: by the next round's done event.
		groupLost := lastLost[holder.pid]

		// The holder's Locker reconnects and serves its next key under
		// the lock; the others follow it.
		next := key + "-next"
		sent := time.Now()
		send(t, []*worker{holder}, command{Op: "fetch", Round: next, Keys: []string{next}, Work: blockFirst, Timeout: patience})
		c := f.awaitComputing(t, func(ev event) bool { return ev.Key == next && ev.N == 1 })
		if c.PID != holder.pid {
			t.Fatalf("round %d: worker %d computes %q, want the terminated holder, alone on it", r, c.PID, next)
		}
		reconnects = append(reconnects, time.Unix(0, c.At).Sub(sent))
		var newPID int32
		if err := obs.QueryRow(ctx, holderPIDSQL, pgflight.LockID(ns, next)).Scan(&newPID); err != nil {
			t.Errorf("round %d: nobody holds the lock of %q while the holder computes it: %v", r, next, err)
		} else if newPID == pid {
			t.Errorf("round %d: the terminated session %d holds the next lock", r, pid)
		}
		send(t, survivors, command{Op: "fetch", Round: next, Keys: []string{next}, Goroutines: 3, Timeout: patience})
		f.awaitFollowers(t, survivors, obs)
		send(t, []*worker{holder}, command{Op: "finish", Keys: []string{next}})
		for _, ev := range awaitAll(t, f.ws, next) {
			if ev.Stats.FailOpens != 0 {
				t.Errorf("round %d: worker pid %d computed %d flights without the lock, want 0", r, ev.PID, ev.Stats.FailOpens)
			}
			for _, c := range ev.Calls {
				if c.Err != "" {
					t.Errorf("round %d: %q: a caller got %s", r, next, c.Err)
					continue
				}
				checkValue(t, next, c.Value)
			}
			lastLost[ev.PID] = ev.Stats.LocksLost
			if ev.PID == holder.pid {
				if d := ev.Lock.Connects - before.Connects; d != 1 || !ev.Lock.Connected {
					t.Errorf("round %d: the holder's Locker opened %d sessions (connected %v), want 1 new one", r, d, ev.Lock.Connected)
				}
				if d := ev.Stats.LocksLost - groupLost; d != 1 {
					t.Errorf("round %d: the holder's Group counted %d more lost locks (Stats.LocksLost), want 1", r, d)
				}
			}
		}
		if n := computations(t, rdb, ns, next); n != 1 {
			t.Errorf("round %d: computations of %q = %d, want 1", r, next, n)
		}
		noLocksLeft(t, obs)
	}
	measured(t, "lock session terminated: terminate → first survivor's value", takeovers...)
	measured(t, "lock session terminated: the holder's next key, command → its computation under the lock (new session included)", reconnects...)
	stop(t, f.ws)
	noLocksLeft(t, obs)
}
