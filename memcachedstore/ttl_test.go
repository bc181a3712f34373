package memcachedstore_test

import (
	"math"
	"testing"
	"time"
)

// TestTTL asks the server, with a meta get, how long it will keep entries
// that the Store set: a 100 ms TTL is 2 s of memcached's clock, a TTL past
// 30 days is not taken for a date in 1970 (an item expired at once), and
// one past January 2038 expires then. The short one then expires by the
// server's own clock, while a 60-day one is still there.
func TestTTL(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	addr := serverAddr(t)
	const day = 24 * time.Hour
	until2038 := int(math.MaxInt32 - time.Now().Unix())
	tests := []struct {
		name     string
		ttl      time.Duration
		min, max int // the server's remaining TTL, seconds
	}{
		{"negative", -time.Second, 1, 2},
		{"100ms", 100 * time.Millisecond, 1, 2},
		{"1s", time.Second, 1, 2},
		{"1.5s", 1500 * time.Millisecond, 2, 3},
		{"1h", time.Hour, 3600, 3601},
		{"30 days less 1s", 30*day - time.Second, 30*86400 - 1, 30 * 86400}, // the last relative one
		{"30 days", 30 * day, 30*86400 - 1, 30*86400 + 2},                   // the first absolute one
		{"60 days", 60 * day, 60*86400 - 1, 60*86400 + 2},
		{"100 years", 100 * 365 * day, until2038 - 2, until2038 + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := t.Name()
			if err := s.Set(ctx, key, []byte(tc.name), tc.ttl); err != nil {
				t.Fatal(err)
			}
			left, ok := remainingTTL(t, addr, key)
			if !ok {
				t.Fatalf("no item after Set(ttl %v)", tc.ttl)
			}
			if left < tc.min || left > tc.max {
				t.Errorf("after Set(ttl %v), the server gives the item %d s, want %d to %d", tc.ttl, left, tc.min, tc.max)
			}
			if got, ok, err := s.Get(ctx, key); string(got) != tc.name || !ok || err != nil {
				t.Errorf("Get after Set(ttl %v) = %q, %v, %v; want %q, true, nil", tc.ttl, got, ok, err, tc.name)
			}
		})
	}

	// The 100 ms entry expires by the server's clock, within its 2 s.
	short := t.Name() + "/100ms"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok, err := s.Get(ctx, short); err != nil {
			t.Fatal(err)
		} else if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry set with ttl 100ms is still there after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, ok, err := s.Get(ctx, t.Name()+"/60_days"); !ok || err != nil {
		t.Errorf("Get of the 60-day entry after the 100 ms one expired = %q, %v, %v; want it there", got, ok, err)
	}
}
