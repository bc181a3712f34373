package pgflight_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
)

// Issue 9.11: Stats show lost deduplication per key, and say their units.
func TestStatsCountPerKeyWithUnits(t *testing.T) {
	ctx := context.Background()

	t.Run("json units", func(t *testing.T) {
		b, err := json.Marshal(pgflight.Stats{LockWait: 6241372})
		if err != nil || !strings.Contains(string(b), `"lock_wait_ns":6241372`) {
			t.Errorf("Stats as JSON = %s, %v; want lock_wait_ns", b, err)
		}
	})

	t.Run("decode error once per flight", func(t *testing.T) {
		cache := memstore.New()
		g := newGroup(t, pgflight.Config{Namespace: "decode-once", Cache: cache})
		if err := cache.Set(ctx, "decode-once:k", []byte("garbage"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		if n := g.Stats().DecodeErrors; n != 1 {
			t.Errorf("DecodeErrors = %d for one bad entry read by one flight, want 1", n)
		}
	})

	t.Run("FetchMany fail-opens per key", func(t *testing.T) {
		g := newGroup(t, pgflight.Config{Cache: memstore.New(), Locker: pglock.New(deadPool(t)), Logger: discardLogger()})
		keys := []string{"a", "b", "c", "d", "e"}
		_, err := pgflight.FetchMany(ctx, g, keys, func(_ context.Context, missing []string) (map[string]int, error) {
			out := map[string]int{}
			for _, k := range missing {
				out[k] = 1
			}
			return out, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := g.Stats().FailOpens; n != uint64(len(keys)) {
			t.Errorf("FailOpens = %d for %d keys computed without the lock, want %d", n, len(keys), len(keys))
		}
	})

	t.Run("locks lost", func(t *testing.T) {
		lost := pgflight.LockerFunc(func(context.Context, int64) (func(context.Context) error, error) {
			return func(context.Context) error { return errors.New("lock session lost") }, nil
		})
		g := newGroup(t, pgflight.Config{Cache: memstore.New(), Locker: lost, Logger: discardLogger()})
		if _, err := pgflight.Fetch(ctx, g, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		g.Close() // the release runs after the callers are served
		if n := g.Stats().LocksLost; n != 1 {
			t.Errorf("LocksLost = %d after a failed release, want 1", n)
		}
	})
}

// discardLogger drops the warnings a test provokes on purpose.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
