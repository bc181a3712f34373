package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight/pglock"
)

// Scenario 2: PostgreSQL restarts, in fast and then immediate mode, while a
// holder computes and other processes wait for it. Every caller returns (the
// waiters compute without the lock, as fail-open promises), nobody hangs,
// and soon after the restart the same Groups share work across processes
// again, without being recreated: each worker's lock session was lost and
// reopened. No lock is left.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	ns := namespace(t)
	f := startFleet(t, 3, workerConfig{DB: pg.URL(), Redis: rd.URL(), Namespace: ns})
	rdb := newRedis(t, rd.URL())

	// shared runs a round in which every worker fetches 3 new keys at once,
	// and reports whether each key was computed once in the whole fleet,
	// and how many flights computed without the lock.
	rounds := 0
	failOpens := make([]uint64, len(f.ws)) // each worker's Stats.FailOpens so far
	shared := func(t *testing.T) (bool, uint64) {
		t.Helper()
		rounds++
		round := fmt.Sprintf("r%d", rounds)
		keys := []string{round + "a", round + "b", round + "c"}
		send(t, f.ws, command{Op: "fetch", Round: round, Keys: keys, Goroutines: 2, Work: sleepWork, Sleep: 100 * time.Millisecond, Timeout: patience})
		var opened uint64
		for i, ev := range awaitAll(t, f.ws, round) {
			opened += ev.Stats.FailOpens - failOpens[i]
			failOpens[i] = ev.Stats.FailOpens
			for _, c := range ev.Calls {
				if c.Err != "" {
					t.Errorf("round %s: a caller got %s", round, c.Err)
				}
				checkValue(t, c.Key, c.Value)
			}
		}
		once := true
		for _, key := range keys {
			once = once && computations(t, rdb, ns, key) == 1
		}
		return once, opened
	}
	if ok, _ := shared(t); !ok {
		t.Fatal("the fleet does not share work before any restart")
	}

	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			key := mode + "-held"
			const timeout = 20 * time.Second
			send(t, f.ws, command{Op: "fetch", Round: key, Keys: []string{key}, Goroutines: 3, Work: blockFirst, Timeout: timeout})
			first := f.awaitComputing(t, func(ev event) bool { return ev.Key == key && ev.N == 1 })
			holder := f.worker(t, first.PID)
			f.awaitFollowers(t, except(f.ws, holder), nil)
			before := make([]pglock.Stats, len(f.ws))
			for i, w := range f.ws {
				before[i] = w.lockStats(t)
			}
			start := time.Now()
			if err := pg.Restart(mode); err != nil {
				t.Fatal(err)
			}
			restarted := time.Now()
			t.Logf("measured: %s restart: the server accepted connections again %v after the restart began", mode, round(restarted.Sub(start)))
			send(t, []*worker{holder}, command{Op: "finish", Keys: []string{key}})
			for _, ev := range awaitAll(t, f.ws, key) {
				for _, c := range ev.Calls {
					if c.Err != "" {
						t.Errorf("a caller got %s, want a value (fail open)", c.Err)
						continue
					}
					checkValue(t, key, c.Value)
					if d := time.Duration(c.End - c.Start); d >= timeout {
						t.Errorf("a caller returned after %v, past its %v deadline", d, timeout)
					}
				}
			}
			t.Logf("%s restart: %d computations of the held key (the holder's, and the waiters' that failed open)",
				mode, computations(t, rdb, ns, key))

			// Recovery: rounds until every key of a round is computed once.
			for n := 1; ; n++ {
				began := time.Now()
				ok, opened := shared(t)
				if !ok {
					t.Logf("%s restart: round %d after it: %d flights computed without the lock (pooled connections the restart killed)", mode, n, opened)
					if n == 1 {
						t.Errorf("%d of 9 flights of the first round after the %s restart computed without the lock, want 0: the lock session reconnects, and sends a try the restart cut once more on the new connection", opened, mode)
					}
				}
				if ok {
					t.Logf("measured: %s restart: processes share work again in round %d after the restart, which began %v after it",
						mode, n, round(began.Sub(restarted)))
					break
				}
				if time.Since(restarted) > patience {
					t.Fatalf("after %v and %d rounds, the fleet still does not share work", patience, n)
				}
			}
			for i, w := range f.ws {
				st := w.lockStats(t)
				st.Connects -= before[i].Connects
				st.SessionLosses -= before[i].SessionLosses
				st.LocksLost -= before[i].LocksLost
				t.Logf("%s restart: worker %d's lock session since the restart: %d connections opened, %d lost, %d locks lost, connected %v",
					mode, w.i, st.Connects, st.SessionLosses, st.LocksLost, st.Connected)
				if st.SessionLosses == 0 || st.Connects == 0 {
					t.Errorf("worker %d: %d session losses, %d connections; want the restart to have ended its session and a new one opened", w.i, st.SessionLosses, st.Connects)
				}
			}
			if n := countOn(t, pg.URL(), advisorySQL); n != 0 {
				t.Errorf("advisory locks after the rounds = %d, want 0", n)
			}
		})
	}
	stop(t, f.ws)
	eventually(t, "no advisory lock is left", func() bool { return countOn(t, pg.URL(), advisorySQL) == 0 })
}

// countOn runs a count query on a connection of its own to url, so that it
// never meets a connection that a restart killed.
func countOn(tb testing.TB, url, sql string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}
