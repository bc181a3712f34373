package faults_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// Scenario 1: the lock holder's process is SIGKILLed mid-computation. A
// waiting process takes over and computes once more; every survivor returns
// that value; no lock is left.
func TestHolderKilled(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	testHolderKilled(t, pg.URL(), pg.URL(), rd.URL(), 5)
}

// testHolderKilled runs rounds of scenario 1 with workers connected to
// workerURL (PostgreSQL, or PgBouncer in front of it) and observes pg_locks
// through observerURL. In each round every live worker fetches a new key
// with 3 callers; the fleet's first computation blocks; once every other
// worker follows it in pg_locks, its process is killed.
func testHolderKilled(t *testing.T, workerURL, observerURL, redisURL string, rounds int) {
	ns := namespace(t)
	f := startFleet(t, rounds+2, workerConfig{DB: workerURL, Redis: redisURL, Namespace: ns})
	obs := newPool(t, observerURL)
	rdb := newRedis(t, redisURL)
	live := f.ws
	var takeovers []time.Duration
	for r := range rounds {
		key := fmt.Sprintf("k%d", r)
		send(t, live, command{Op: "fetch", Round: key, Keys: []string{key}, Goroutines: 3, Work: blockFirst, Timeout: patience})
		first := f.awaitComputing(t, func(ev event) bool { return ev.Key == key && ev.N == 1 })
		holder := f.worker(t, first.PID)
		survivors := except(live, holder)
		eventually(t, "every other worker follows the holder", func() bool {
			return count(t, obs, followersSQL) == len(survivors)
		})
		killed := time.Now()
		if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		values := map[string]int{}
		var firstValue time.Time
		for _, ev := range awaitAll(t, survivors, key) {
			for _, c := range ev.Calls {
				if c.Err != "" {
					t.Errorf("round %d: a survivor's caller got %s", r, c.Err)
					continue
				}
				checkValue(t, key, c.Value)
				values[c.Value]++
				if firstValue.IsZero() || c.end().Before(firstValue) {
					firstValue = c.end()
				}
			}
		}
		if len(values) != 1 {
			t.Errorf("round %d: survivors returned %v, want one value", r, values)
		}
		if n := computations(t, rdb, ns, key); n != 2 {
			t.Errorf("round %d: computations = %d, want 2 (the killed holder's, then one survivor's)", r, n)
		}
		takeovers = append(takeovers, firstValue.Sub(killed))
		noLocksLeft(t, obs)
		live = survivors
	}
	measured(t, "takeover after SIGKILL of the holder (kill → first survivor's value)", takeovers...)
	stop(t, live)
	noLocksLeft(t, obs)
}
