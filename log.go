package pgflight

import (
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"
)

// warnEvery is the minimum interval between two warnings of one kind.
const warnEvery = 10 * time.Second

type warnKind int

const (
	warnLocker warnKind = iota
	warnCacheGet
	warnCacheSet
	warnDecode
	warnRelease
	warnRefresh
	warnBroadcast
	warnFailSafe
	warnTags
	numWarnKinds
)

// rateLimitedLogger logs at most one warning of each kind per warnEvery, and
// says how many it suppressed meanwhile.
type rateLimitedLogger struct {
	l          *slog.Logger
	last       [numWarnKinds]atomic.Int64 // Unix nanoseconds of the last warning
	suppressed [numWarnKinds]atomic.Int64
}

func (r *rateLimitedLogger) warn(kind warnKind, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := r.last[kind].Load()
	if now-last < int64(warnEvery) || !r.last[kind].CompareAndSwap(last, now) {
		r.suppressed[kind].Add(1)
		return
	}
	if n := r.suppressed[kind].Swap(0); n > 0 {
		args = append(args, slog.Int64("suppressed", n))
	}
	r.l.Warn(msg, args...)
}

// logKey returns key for a log attribute: as it is (the handler quotes it),
// cut to 80 bytes with its length if longer.
func logKey(key string) string {
	const max = 80
	if len(key) > max {
		return key[:max] + "...(" + strconv.Itoa(len(key)) + " bytes)"
	}
	return key
}
