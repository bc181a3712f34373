package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

// ttl is the lifetime of ordinary test entries: longer than any subtest,
// short enough that a shared server soon forgets what a run left behind.
const ttl = time.Minute

// Run runs the conformance tests as subtests of t against caches made by
// newCache.
//
// Run calls newCache once per subtest, on that subtest's goroutine, and runs
// the subtests one after another. The cache newCache returns need not be
// empty: each subtest uses keys of its own under a prefix unique to the run,
// so caches that share one server are fine. newCache may stop the test with
// t.Fatal, and registers with t.Cleanup whatever must be closed.
//
// The subtests are named (Miss, SetGet, Overwrite, EmptyValue, BinaryValue,
// Keys, LargeValue, TTL, CallerOwnsValue, Delete, Concurrent,
// CancelledContext, Batch), so -run can pick one. Delete skips itself if the
// cache is not a [pgflight.Deleter], and Batch if it is not a
// [pgflight.BatchCache].
func Run(t *testing.T, newCache func(t *testing.T) pgflight.Cache) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, c pgflight.Cache, prefix string)
	}{
		{"Miss", testMiss},
		{"SetGet", testSetGet},
		{"Overwrite", testOverwrite},
		{"EmptyValue", testEmptyValue},
		{"BinaryValue", testBinaryValue},
		{"Keys", testKeys},
		{"LargeValue", testLargeValue},
		{"TTL", testTTL},
		{"CallerOwnsValue", testCallerOwnsValue},
		{"Delete", testDelete},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelledContext},
		{"Batch", testBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t)
			if c == nil {
				t.Fatal("newCache returned nil")
			}
			tc.fn(t, c, fmt.Sprintf("storetest:%s:%016x:", t.Name(), rand.Uint64()))
		})
	}
}

// set stores val under key for d, failing t on error, and forgets key when
// t ends.
func set(t *testing.T, c pgflight.Cache, key string, val []byte, d time.Duration) {
	t.Helper()
	forget(t, c, key)
	if err := c.Set(t.Context(), key, val, d); err != nil {
		t.Fatalf("Set(%s): %v", short(key), err)
	}
}

// get returns what c holds under key, failing t on error.
func get(t *testing.T, c pgflight.Cache, key string) ([]byte, bool) {
	t.Helper()
	val, ok, err := c.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", short(key), err)
	}
	if !ok && val != nil {
		t.Errorf("Get(%s) = %q, false, nil; want nil on a miss", short(key), val)
	}
	return val, ok
}

// want fails t unless c holds exactly val under key.
func want(t *testing.T, c pgflight.Cache, key string, val []byte) {
	t.Helper()
	got, ok := get(t, c, key)
	if !ok {
		t.Errorf("Get(%s): miss, want a value of %d bytes", short(key), len(val))
		return
	}
	if d := diff(got, val); d != "" {
		t.Errorf("Get(%s): %s", short(key), d)
	}
}

// forget deletes key when t ends if c is a [pgflight.Deleter], so that a
// shared server does not keep the entry for its whole TTL.
func forget(t *testing.T, c pgflight.Cache, key string) {
	d, ok := c.(pgflight.Deleter)
	if !ok {
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Delete(ctx, key); err != nil {
			t.Errorf("cleanup: Delete(%s): %v", short(key), err)
		}
	})
}

// diff describes how got differs from want, or returns "" if they are
// equal. It never prints a whole value, which may be a mebibyte.
func diff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes, want %d; first difference at byte %d (got %s, want %s)",
		len(got), len(want), i, at(got, i), at(want, i))
}

func at(b []byte, i int) string {
	if i >= len(b) {
		return "end"
	}
	return fmt.Sprintf("%#02x", b[i])
}

// short quotes key for messages, shortened if it is long.
func short(key string) string {
	if len(key) > 80 {
		return fmt.Sprintf("%+q...(%d bytes)", key[:80], len(key))
	}
	return fmt.Sprintf("%q", key)
}
