package memcachedstore

import (
	"math"
	"testing"
	"time"
)

func TestExpiration(t *testing.T) {
	now := time.Unix(1_800_000_000, 500_000_000) // 2027-01-15, half a second in
	const day = 24 * time.Hour
	tests := []struct {
		ttl  time.Duration
		want int32
	}{
		{math.MinInt64, 2},
		{0, 2},
		{time.Nanosecond, 2},
		{time.Second, 2},
		{time.Second + time.Nanosecond, 3},
		{time.Minute, 61},
		{30*day - time.Second, 2_592_000},          // relative, the longest
		{30 * day, 1_800_000_000 + 2_592_001},      // absolute from here on
		{60 * day, 1_800_000_000 + 60*86400 + 1},   // 60 days and a second
		{60*day + time.Millisecond, 1_805_184_002}, // rounded up
		{(math.MaxInt32 - 1_800_000_000 - 2) * time.Second, math.MaxInt32 - 1}, // 2038-01-19, the last second but one
		{(math.MaxInt32 - 1_800_000_000) * time.Second, math.MaxInt32},
		{math.MaxInt64, math.MaxInt32},
	}
	for _, tc := range tests {
		if got := expiration(tc.ttl, now); got != tc.want {
			t.Errorf("expiration(%v) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
}
