package memstore_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pgflight/pgflight/memstore"
)

// TestTTL runs in a synctest bubble: otter reads time through time.Now and
// its clean-up goroutine ticks on a time.Ticker, so a Store created inside
// the bubble lives on the bubble's fake clock and no test time passes.
func TestTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memstore.New()
		defer s.Close() // before the bubble ends, or its clean-up goroutine would block it
		ctx := t.Context()
		set := func(key string, ttl time.Duration) {
			t.Helper()
			if err := s.Set(ctx, key, []byte(key), ttl); err != nil {
				t.Fatalf("Set(%q): %v", key, err)
			}
		}
		has := func(key string) bool {
			t.Helper()
			val, ok, err := s.Get(ctx, key)
			if err != nil || ok && string(val) != key {
				t.Fatalf("Get(%q) = %q, %v, %v; want %q or a miss", key, val, ok, err, key)
			}
			return ok
		}

		set("short", 100*time.Millisecond)
		set("long", time.Hour)
		set("shortened", time.Hour)
		set("shortened", 100*time.Millisecond) // an overwrite takes the new ttl
		set("lengthened", 100*time.Millisecond)
		set("lengthened", time.Hour)
		set("zero", time.Hour)
		set("zero", 0) // removes the entry
		set("negative", -time.Second)

		for _, k := range []string{"zero", "negative"} {
			if has(k) {
				t.Errorf("Get(%q) is a hit, want a ttl ≤ 0 to leave no entry", k)
			}
		}
		time.Sleep(100*time.Millisecond - 1)
		for _, k := range []string{"short", "long", "shortened", "lengthened"} {
			if !has(k) {
				t.Errorf("Get(%q) 1ns before 100ms: miss, want a hit", k)
			}
		}
		time.Sleep(1)
		for k, want := range map[string]bool{"short": false, "shortened": false, "long": true, "lengthened": true} {
			if got := has(k); got != want {
				t.Errorf("Get(%q) at 100ms: hit = %v, want %v", k, got, want)
			}
		}

		// otter removes expired entries on its own once a second.
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got, want := s.Len(), 2; got != want {
			t.Errorf("Len after the clean-up = %d, want %d (long, lengthened)", got, want)
		}
	})
}
