package faults_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// Scenario 9: every key's lock id collides. Worker processes whose Locker
// maps every id to one (a wrapper around the real pglock.Locker) fetch the
// same 8 keys at once. Keys are serialised on the one lock, never mixed:
// each is computed once in the fleet, and every caller gets its own key's
// value.
func TestLockIDCollision(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t, nil)
	rd := startRedis(t)
	ns := namespace(t)
	// MaxConns 20: pglock's cap is then 10, above the 8 keys per worker, so
	// no flight computes without the lock.
	f := startFleet(t, 3, workerConfig{DB: pg.URL(), Redis: rd.URL(), Namespace: ns, MaxConns: 20, Collide: true})
	rdb := newRedis(t, rd.URL())
	obs := newPool(t, pg.URL())
	var keys []string
	for i := range 8 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	send(t, f.ws, command{Op: "fetch", Round: "collide", Keys: keys, Goroutines: 2, Work: sleepWork, Sleep: 30 * time.Millisecond, Timeout: patience})
	var failOpens uint64
	for _, ev := range awaitAll(t, f.ws, "collide") {
		failOpens += ev.Stats.FailOpens
		for _, c := range ev.Calls {
			if c.Err != "" {
				t.Errorf("Fetch(%q): %s", c.Key, c.Err)
				continue
			}
			checkValue(t, c.Key, c.Value)
		}
	}
	if failOpens != 0 {
		t.Errorf("%d flights computed without the lock, want 0", failOpens)
	}
	for _, key := range keys {
		if n := computations(t, rdb, ns, key); n != 1 {
			t.Errorf("computations of %q = %d, want 1", key, n)
		}
	}
	// The computations were serialised: no two overlapped.
	f.mu.Lock()
	var starts []int64
	for _, ev := range f.computing {
		starts = append(starts, ev.At)
	}
	f.mu.Unlock()
	slices.Sort(starts)
	for i := 1; i < len(starts); i++ {
		if d := time.Duration(starts[i] - starts[i-1]); d < 30*time.Millisecond {
			t.Errorf("two computations began %v apart, less than one computation's 30 ms: they overlapped", d)
		}
	}
	stop(t, f.ws)
	noLocksLeft(t, obs)
}
