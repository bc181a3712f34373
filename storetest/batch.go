package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

// testBatch checks GetMany and SetMany of a BatchCache against Get and Set:
// order, misses as nil, empty values as non-nil, and per-key TTLs.
func testBatch(t *testing.T, c pgflight.Cache, prefix string) {
	bc, ok := c.(pgflight.BatchCache)
	if !ok {
		t.Skipf("%T is not a pgflight.BatchCache", c)
	}
	keys := []string{prefix + "a", prefix + "missing", prefix + "empty", prefix + "short", prefix + "b"}
	for _, k := range keys {
		forget(t, c, k)
	}
	vals := [][]byte{[]byte("A"), nil, {}, []byte("S"), []byte("B")}
	setKeys := []string{keys[0], keys[2], keys[3], keys[4]}
	setVals := [][]byte{vals[0], vals[2], vals[3], vals[4]}
	ttls := []time.Duration{ttl, ttl, 50 * time.Millisecond, ttl}
	if err := bc.SetMany(t.Context(), setKeys, setVals, ttls); err != nil {
		t.Fatalf("SetMany: %v", err)
	}
	got, err := bc.GetMany(t.Context(), keys)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(got) != len(keys) {
		t.Fatalf("GetMany returned %d values for %d keys", len(got), len(keys))
	}
	for i, k := range keys {
		switch {
		case vals[i] == nil && got[i] != nil:
			t.Errorf("GetMany[%s] = %q, want nil (a miss)", short(k), got[i])
		case vals[i] != nil && (got[i] == nil || !bytes.Equal(got[i], vals[i])):
			t.Errorf("GetMany[%s] = %q (nil: %v), want %q", short(k), got[i], got[i] == nil, vals[i])
		}
		if vals[i] != nil {
			want(t, c, k, vals[i]) // Get agrees with SetMany
		}
	}
	waitGone(t, c, keys[3])
	want(t, c, keys[4], vals[4])
}

// waitGone polls until key is gone, failing t after 10 seconds.
func waitGone(t *testing.T, c pgflight.Cache, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := get(t, c, key); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there after its TTL", short(key))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
