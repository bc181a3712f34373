package pgflight_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// Issue 9.8: durations that would overflow an entry's timestamps, and NaN
// or infinite factors, are refused at New, one field per message, instead
// of silently turning caching off.
func TestConfigRefusesExtremeValues(t *testing.T) {
	const huge = time.Duration(math.MaxInt64)
	cases := []struct {
		field string
		cfg   pgflight.Config
	}{
		{"TTL", pgflight.Config{TTL: 236 * 365 * 24 * time.Hour}},
		{"TTL", pgflight.Config{TTL: -time.Second}},
		{"StaleTTL", pgflight.Config{StaleTTL: huge}},
		{"MissingTTL", pgflight.Config{MissingTTL: huge}},
		{"LockWait", pgflight.Config{LockWait: -1}},
		{"RefreshTimeout", pgflight.Config{RefreshTimeout: -1}},
		{"MaxRefreshes", pgflight.Config{MaxRefreshes: -1}},
		{"TTLJitter", pgflight.Config{TTLJitter: math.NaN()}},
		{"TTLJitter", pgflight.Config{TTLJitter: math.Inf(1)}},
		{"TTLJitter", pgflight.Config{TTLJitter: 1}},
		{"EarlyRefresh", pgflight.Config{EarlyRefresh: math.NaN()}},
		{"EarlyRefresh", pgflight.Config{EarlyRefresh: math.Inf(1)}},
		{"EarlyRefresh", pgflight.Config{EarlyRefresh: -1}},
	}
	for _, tc := range cases {
		_, err := pgflight.New(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "pgflight: "+tc.field+":") || strings.Count(err.Error(), "pgflight:") != 1 {
			t.Errorf("New(%s out of range) = %v, want one error naming %s", tc.field, err, tc.field)
		}
	}
}

func TestOptionsRefuseExtremeValues(t *testing.T) {
	g := newGroup(t, pgflight.Config{Cache: memstore.New()})
	fn := func(context.Context) (int, error) { return 1, nil }
	for name, opt := range map[string]pgflight.Option{
		"WithTTL":          pgflight.WithTTL(time.Duration(math.MaxInt64)),
		"WithStaleTTL":     pgflight.WithStaleTTL(time.Duration(math.MaxInt64)),
		"WithEarlyRefresh": pgflight.WithEarlyRefresh(math.NaN()),
	} {
		_, err := pgflight.Fetch(context.Background(), g, "k", fn, opt)
		if err == nil || !strings.Contains(err.Error(), name+":") || strings.Count(err.Error(), "pgflight:") != 1 {
			t.Errorf("Fetch with %s out of range = %v, want one error naming %s", name, err, name)
		}
	}
}

// The longest accepted durations still cache.
func TestMaxTTLCaches(t *testing.T) {
	g := newGroup(t, pgflight.Config{Cache: memstore.New(), TTL: pgflight.MaxTTL, StaleTTL: pgflight.MaxTTL, TTLJitter: 0.5})
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return calls, nil }
	for range 3 {
		if v, err := pgflight.Fetch(context.Background(), g, "k", fn); v != 1 || err != nil {
			t.Fatalf("Fetch = %d, %v; want the cached 1", v, err)
		}
	}
}
