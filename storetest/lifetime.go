package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

// testTTL checks that an entry disappears once its TTL has passed, while a
// longer-lived one stays. It polls instead of sleeping for a fixed time,
// because stores expire entries on their own schedule (memcached counts whole
// seconds).
func testTTL(t *testing.T, c pgflight.Cache, prefix string) {
	const timeout = 10 * time.Second
	short, long := prefix+"short", prefix+"long"
	set(t, c, long, []byte("long"), time.Hour)
	set(t, c, short, []byte("short"), 100*time.Millisecond)
	start := time.Now()
	for {
		val, ok := get(t, c, short)
		if !ok {
			break
		}
		if !bytes.Equal(val, []byte("short")) {
			t.Fatalf("Get(short): %s", diff(val, []byte("short")))
		}
		if time.Since(start) > timeout {
			t.Fatalf("entry set with ttl 100ms is still there after %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want(t, c, long, []byte("long"))
}

func testDelete(t *testing.T, c pgflight.Cache, prefix string) {
	d, ok := c.(pgflight.Deleter)
	if !ok {
		t.Skip("the cache is not a pgflight.Deleter")
	}
	key, other := prefix+"k", prefix+"other"
	set(t, c, key, []byte("v"), ttl)
	set(t, c, other, []byte("other"), ttl)
	if err := d.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if val, ok := get(t, c, key); ok {
		t.Errorf("Get after Delete = %q, true; want a miss", val)
	}
	want(t, c, other, []byte("other"))
	if err := d.Delete(t.Context(), key); err != nil {
		t.Errorf("Delete of a deleted key: %v, want nil", err)
	}
	if err := d.Delete(t.Context(), prefix+"never-set"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
	set(t, c, key, []byte("again"), ttl)
	want(t, c, key, []byte("again"))
}
