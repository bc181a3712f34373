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
	testHolderKilled(t, workerConfig{DB: pg.URL(), Redis: rd.URL()}, pg.URL(), 5)
}

// testHolderKilled runs rounds of scenario 1 with workers configured by cfg
// (connected to PostgreSQL, or PgBouncer in front of it; cfg.Namespace is
// the test's) and observes pg_locks through observerURL. In each round
// every live worker fetches a new key with 3 callers; the fleet's first
// computation blocks; once every other worker follows it, its process is
// killed. In session mode the survivors learn it from their probe (a dead
// session's locks vanish unannounced); in transaction mode PostgreSQL
// grants their shared waits at once.
func testHolderKilled(t *testing.T, cfg workerConfig, observerURL string, rounds int) {
	ns := namespace(t)
	cfg.Namespace = ns
	f := startFleet(t, rounds+2, cfg)
	obs := newPool(t, observerURL)
	rdb := newRedis(t, cfg.Redis)
	live := f.ws
	var takeovers []time.Duration
	lastWakes := map[int]uint64{} // each worker's Stats.ProbeWakes at its last round
	for r := range rounds {
		key := fmt.Sprintf("k%d", r)
		send(t, live, command{Op: "fetch", Round: key, Keys: []string{key}, Goroutines: 3, Work: blockFirst, Timeout: patience})
		first := f.awaitComputing(t, func(ev event) bool { return ev.Key == key && ev.N == 1 })
		holder := f.worker(t, first.PID)
		survivors := except(live, holder)
		f.awaitFollowers(t, survivors, obs)
		killed := time.Now()
		if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		values, firstValue, probeWakes := survivorsRound(t, r, survivors, key, lastWakes) // probeWakes: the survivors' in this round
		if len(values) != 1 {
			t.Errorf("round %d: survivors returned %v, want one value", r, values)
		}
		if n := computations(t, rdb, ns, key); n != 2 {
			t.Errorf("round %d: computations = %d, want 2 (the killed holder's, then one survivor's)", r, n)
		}
		// In session mode nobody notified the survivors: their probes
		// found the dead holder's lock gone.
		if !cfg.TxMode && probeWakes == 0 {
			t.Errorf("round %d: the survivors' probes woke no follower; want at least one: only a probe can notice a dead holder", r)
		}
		takeovers = append(takeovers, firstValue.Sub(killed))
		noLocksLeft(t, obs)
		live = survivors
	}
	measured(t, t.Name()+": takeover after SIGKILL of the holder (kill → first survivor's value)", takeovers...)
	stop(t, live)
	noLocksLeft(t, obs)
}

// survivorsRound collects the survivors' calls of round r on key: the
// values they returned (counted), when the first was returned, and how many
// followers their probes woke this round (lastWakes carries each
// process's count from round to round). A caller's error fails t.
func survivorsRound(t *testing.T, r int, survivors []*worker, key string, lastWakes map[int]uint64) (values map[string]int, firstValue time.Time, probeWakes uint64) {
	t.Helper()
	values = map[string]int{}
	for _, ev := range awaitAll(t, survivors, key) {
		probeWakes += ev.Lock.ProbeWakes - lastWakes[ev.PID]
		lastWakes[ev.PID] = ev.Lock.ProbeWakes
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
	return values, firstValue, probeWakes
}
