package pgflight_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/redisstore"
)

// inspectCaches are the Caches Inspect is tested on: memory, and Redis
// through redisstore, each a fresh Store.
func inspectCaches(t *testing.T) map[string]pgflight.Cache {
	t.Helper()
	mem := memstore.New()
	t.Cleanup(func() { mem.Close() })
	return map[string]pgflight.Cache{"memstore": mem, "redis": redisstore.New(newRedis(t))}
}

// envelopeHeader is the size of an entry's header (envelope.go), which
// EntryInfo.Size counts.
const envelopeHeader = 27

// Inspect reports each kind of entry a Group writes, as stored.
func TestInspect(t *testing.T) {
	type point struct{ X, Y int }
	for name, c := range inspectCaches(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := namespace(t)
			g := newGroup(t, pgflight.Config{Cache: c, Namespace: ns, TTL: time.Hour, MissingTTL: time.Minute})

			t.Run("fresh", func(t *testing.T) {
				if _, err := pgflight.Fetch(ctx, g, "point", func(context.Context) (point, error) { return point{1, 2}, nil }); err != nil {
					t.Fatal(err)
				}
				info, err := pgflight.Inspect(ctx, c, ns, "point")
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
				if info.Key != ns+":point" || !info.Found {
					t.Errorf("Key, Found = %q, %v, want %q, true", info.Key, info.Found, ns+":point")
				}
				if got, want := string(info.Value), `{"X":1,"Y":2}`; got != want {
					t.Errorf("Value = %s, want %s", got, want)
				}
				if info.Size != envelopeHeader+len(info.Value) {
					t.Errorf("Size = %d, want %d (header and value)", info.Size, envelopeHeader+len(info.Value))
				}
				if got := info.FreshUntil.Sub(info.ComputedAt); got != time.Hour {
					t.Errorf("FreshUntil - ComputedAt = %v, want the TTL, 1h", got)
				}
				if now := time.Now(); info.ComputedAt.After(now) || now.Sub(info.ComputedAt) > time.Minute {
					t.Errorf("ComputedAt = %v, want about now (%v)", info.ComputedAt, now)
				}
				if info.Missing || info.Nil || info.ComputeTime < 0 {
					t.Errorf("Missing, Nil, ComputeTime = %v, %v, %v, want false, false, >= 0", info.Missing, info.Nil, info.ComputeTime)
				}
			})

			t.Run("missing", func(t *testing.T) {
				_, err := pgflight.Fetch(ctx, g, "user:7", func(context.Context) (string, error) {
					return "", fmt.Errorf("user 7 not found: %w", pgflight.ErrMissing)
				})
				if !errors.Is(err, pgflight.ErrMissing) {
					t.Fatalf("Fetch: %v, want ErrMissing", err)
				}
				info, err := pgflight.Inspect(ctx, c, ns, "user:7")
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
				if !info.Found || !info.Missing || info.Nil {
					t.Errorf("Found, Missing, Nil = %v, %v, %v, want true, true, false", info.Found, info.Missing, info.Nil)
				}
				if got, want := string(info.Value), "user 7 not found: missing"; got != want {
					t.Errorf("Value = %q, want %q", got, want)
				}
				if got := info.FreshUntil.Sub(info.ComputedAt); got != time.Minute {
					t.Errorf("FreshUntil - ComputedAt = %v, want the MissingTTL, 1m", got)
				}
			})

			t.Run("nil bytes", func(t *testing.T) {
				if _, err := pgflight.Fetch(ctx, g, "blob", func(context.Context) ([]byte, error) { return nil, nil }); err != nil {
					t.Fatal(err)
				}
				info, err := pgflight.Inspect(ctx, c, ns, "blob")
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
				if !info.Found || !info.Nil || info.Missing || len(info.Value) != 0 || info.Size != envelopeHeader {
					t.Errorf("info = %+v, want a found nil value of %d bytes", info, envelopeHeader)
				}
			})

			t.Run("absent", func(t *testing.T) {
				info, err := pgflight.Inspect(ctx, c, ns, "never-written")
				if err != nil {
					t.Fatalf("Inspect: %v", err)
				}
				if want := (pgflight.EntryInfo{Key: ns + ":never-written"}); info.Key != want.Key || info.Found || info.Size != 0 || info.Value != nil {
					t.Errorf("info = %+v, want %+v", info, want)
				}
			})

			t.Run("forged", func(t *testing.T) {
				unknownFlags := append([]byte{0xF1, 1, 0x80}, make([]byte, 24)...)
				for _, forged := range [][]byte{[]byte("not an entry at all"), {0xF1}, unknownFlags} {
					ck := ns + ":forged"
					if err := c.Set(ctx, ck, forged, time.Minute); err != nil {
						t.Fatal(err)
					}
					info, err := pgflight.Inspect(ctx, c, ns, "forged")
					var de *pgflight.DecodeError
					if !errors.As(err, &de) || de.Key != ck {
						t.Errorf("%q: err = %v, want a *DecodeError for %q", forged, err, ck)
					}
					if !info.Found || info.Size != len(forged) || !bytes.Equal(info.Value, forged) || !info.ComputedAt.IsZero() {
						t.Errorf("%q: info = %+v, want found, with the raw bytes and no times", forged, info)
					}
				}
			})
		})
	}
}

// An entry written with a stale window and a clock two hours behind is
// stale now, and still stored, which Inspect shows; Redis's TTL shows the
// stale window the entry does not record.
func TestInspectStale(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	ns := namespace(t)
	g := newGroup(t, pgflight.Config{Cache: redisstore.New(rdb), Namespace: ns, TTL: time.Minute, StaleTTL: 24 * time.Hour})
	past := time.Now().Add(-2 * time.Hour)
	pgflight.SetClock(g, func() time.Time { return past })
	if _, err := pgflight.Fetch(ctx, g, "report", func(context.Context) (string, error) { return "q3", nil }); err != nil {
		t.Fatal(err)
	}
	info, err := pgflight.Inspect(ctx, redisstore.New(rdb), ns, "report")
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if !info.Found || string(info.Value) != "q3" || info.Missing {
		t.Fatalf("info = %+v, want a found value q3", info)
	}
	if !info.ComputedAt.Equal(past) || !info.FreshUntil.Equal(past.Add(time.Minute)) {
		t.Errorf("ComputedAt, FreshUntil = %v, %v, want %v and a minute later", info.ComputedAt, info.FreshUntil, past)
	}
	if !info.FreshUntil.Before(time.Now()) {
		t.Errorf("FreshUntil = %v, want it past: the entry is stale", info.FreshUntil)
	}
	pttl, err := rdb.PTTL(ctx, info.Key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 24*time.Hour || pttl > 24*time.Hour+time.Minute {
		t.Errorf("Redis PTTL = %v, want the TTL and stale window, 24h1m, counted from the write", pttl)
	}
}

// Inspect refuses a namespace or key a Group refuses, before it reads, and
// reports a failed read.
func TestInspectErrors(t *testing.T) {
	ctx := context.Background()
	cc := &countingCache{Cache: memstore.New()}
	for _, tc := range []struct {
		name, ns, key, want string
	}{
		{"namespace with a colon", "site:user", "k", "Namespace"},
		{"namespace with a space", "a b", "k", "Namespace"},
		{"namespace too long", strings.Repeat("n", 129), "k", "Namespace"},
		{"empty key", "site", "", "empty key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pgflight.Inspect(ctx, cc, tc.ns, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one about %s", err, tc.want)
			}
			if tc.key == "" && !errors.Is(err, pgflight.ErrInvalidKey) {
				t.Errorf("err = %v, want ErrInvalidKey", err)
			}
		})
	}
	if n := cc.gets.Load(); n != 0 {
		t.Errorf("Inspect read the cache %d times for bad input, want 0", n)
	}

	info, err := pgflight.Inspect(ctx, cc, "", "k")
	if err != nil || info.Key != "pgflight:k" {
		t.Errorf("default namespace: Key = %q, err = %v, want pgflight:k, nil", info.Key, err)
	}

	info, err = pgflight.Inspect(ctx, redisstore.New(deadRedis(t)), "site", "k")
	if err == nil || !strings.Contains(err.Error(), `pgflight: inspect "site:k": cache: `) || info.Found {
		t.Errorf("dead Redis: info = %+v, err = %v, want a cache error", info, err)
	}
}
