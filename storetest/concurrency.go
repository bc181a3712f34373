package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pgflight/pgflight"
)

// testConcurrent runs 16 goroutines that write and read two shared keys and
// one key each. A read of a shared key must return one of the values written
// to it, whole; a read of a goroutine's own key, its latest write.
func testConcurrent(t *testing.T, c pgflight.Cache, prefix string) {
	const goroutines, rounds = 16, 50
	shared := []string{prefix + "shared0", prefix + "shared1"}
	vals := make([][]byte, goroutines)
	valid := make(map[string]bool)
	for g := range vals {
		// Different lengths and fill bytes, so a torn read cannot look whole.
		vals[g] = bytes.Repeat([]byte{'a' + byte(g)}, 4096+512*g)
		valid[string(vals[g])] = true
	}
	for _, k := range shared {
		forget(t, c, k)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range goroutines {
		own := fmt.Sprintf("%sown%d", prefix, g)
		forget(t, c, own)
		wg.Go(func() {
			for i := range rounds {
				sk := shared[(g+i)%len(shared)]
				if err := c.Set(ctx, sk, vals[g], ttl); err != nil {
					t.Errorf("Set(shared): %v", err)
					return
				}
				got, ok, err := c.Get(ctx, sk)
				if err != nil || !ok {
					t.Errorf("Get(shared) = %d bytes, %v, %v; want a value, true, nil", len(got), ok, err)
					return
				}
				if !valid[string(got)] {
					t.Errorf("Get(shared) returned %d bytes that no one wrote (torn value?)", len(got))
					return
				}
				mine := bytes.Repeat([]byte{byte(i)}, 1000+g*rounds+i)
				if err := c.Set(ctx, own, mine, ttl); err != nil {
					t.Errorf("Set(own): %v", err)
					return
				}
				got, ok, err = c.Get(ctx, own)
				if err != nil || !ok {
					t.Errorf("Get(own) = %d bytes, %v, %v; want a value, true, nil", len(got), ok, err)
					return
				}
				if d := diff(got, mine); d != "" {
					t.Errorf("Get(own) after Set(own): %s", d)
					return
				}
			}
		})
	}
	wg.Wait()
}

// testCancelledContext calls the cache with a context that is already
// cancelled. A call may fail, with an error wrapping [context.Canceled], or
// succeed, but a value it reports must be the right one, and a Set it failed
// may have stored the new value or kept the old, nothing else.
func testCancelledContext(t *testing.T, c pgflight.Cache, prefix string) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	key, fresh := prefix+"k", prefix+"fresh"
	old := []byte("old")
	set(t, c, key, old, ttl)

	val, ok, err := c.Get(cancelled, key)
	switch {
	case err != nil:
		wantCanceled(t, "Get", err)
	case !ok:
		t.Errorf("Get with cancelled ctx = nil, false, nil for a present key; want the value or an error")
	default:
		if d := diff(val, old); d != "" {
			t.Errorf("Get with cancelled ctx: %s", d)
		}
	}

	forget(t, c, fresh)
	if err := c.Set(cancelled, fresh, []byte("new"), ttl); err != nil {
		wantCanceled(t, "Set", err)
		if val, ok := get(t, c, fresh); ok && !bytes.Equal(val, []byte("new")) {
			t.Errorf("Get after a failed Set = %q, want a miss or %q", val, "new")
		}
	} else {
		want(t, c, fresh, []byte("new"))
	}

	if err := c.Set(cancelled, key, []byte("new"), ttl); err != nil {
		wantCanceled(t, "Set", err)
	}
	if val, ok := get(t, c, key); !ok || !bytes.Equal(val, old) && !bytes.Equal(val, []byte("new")) {
		t.Errorf("Get after Set with cancelled ctx = %q, %v; want %q or %q, true", val, ok, old, "new")
	}

	if d, ok := c.(pgflight.Deleter); ok {
		if err := d.Delete(cancelled, key); err != nil {
			wantCanceled(t, "Delete", err)
		}
	}
}

func wantCanceled(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%s with cancelled ctx: err = %v, want one wrapping context.Canceled", op, err)
	}
}
