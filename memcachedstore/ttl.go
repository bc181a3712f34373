package memcachedstore

import (
	"math"
	"time"
)

// maxRelative is the longest expiration, in seconds, that memcached takes
// as relative to now: 30 days. It reads a larger one as a Unix time.
const maxRelative = 30 * 24 * 60 * 60

// expiration returns the memcached expiration for an entry that must live
// at least ttl from now.
//
// memcached counts time in whole seconds of its own clock, and an item set
// to expire in n seconds expires at the n-th tick of that clock from now,
// which is between n-1 and n seconds away (measured on memcached 1.6: an
// expiration of 1 lived 150 to 830 ms). So expiration rounds ttl up to
// whole seconds, at least one, and adds one: an entry lives at least ttl
// and less than ttl + 2 s. Past 30 days it sends the Unix time of now plus
// that many seconds, by the local clock, since memcached would read the
// number of seconds as a date in 1970 and expire the item at once; an
// expiry past January 2038, memcached's last, is that date.
func expiration(ttl time.Duration, now time.Time) int32 {
	secs := int64(1)
	if ttl > time.Second {
		secs = int64(ttl / time.Second)
		if ttl%time.Second != 0 {
			secs++
		}
	}
	secs++
	if secs <= maxRelative {
		return int32(secs)
	}
	if abs := now.Unix() + secs; abs < math.MaxInt32 {
		return int32(abs)
	}
	return math.MaxInt32
}
