package pglock

import (
	"context"
	"fmt"
	"strconv"
)

// MaxBatchLocks caps the locks [Locker.TryLockMany] takes in one
// transaction. Each lock takes a slot of PostgreSQL's shared lock table,
// whose exhaustion fails every session on the server, so a batch of more ids
// takes only the first MaxBatchLocks free ones and reports the rest as not
// taken.
const MaxBatchLocks = 256

// The batch statements of transaction mode, sent after the Locker's begin
// statement (beginSQL: BEGIN, the timeouts and the keepalive settings), as
// the single-key ones are. The ids go into an array literal of integers.
const (
	tryManySQL     = "select pg_try_advisory_xact_lock(x) from unnest('{"
	tryManySQLEnd  = "}'::bigint[]) as t(x)"
	waitManySQL    = "select pg_advisory_xact_lock_shared(x) from unnest('{"
	waitManySQLEnd = "}'::bigint[]) as t(x); rollback"
)

// TryLockMany takes, without waiting and in one round trip, the lock on
// every id that no other holder has, trying them in the order given
// (callers pass ascending ids). held[i] reports whether it took ids[i]. It
// takes at most [MaxBatchLocks] locks, and on the session at most the lock
// slots then free ([WithMaxLocks]; it waits under ctx for the first); the
// ids past them are reported not taken. In transaction mode the locks share
// one transaction on one pool connection.
//
// If it took any, it returns unlock, which commits and releases them all, as
// [Locker.Lock]'s unlock does; otherwise it rolls back, returns the
// connection and returns a nil unlock. One round trip, two when none is
// taken. On failure it returns a non-nil error and holds no lock.
func (l *Locker) TryLockMany(ctx context.Context, ids []int64) (held []bool, unlock func(context.Context) error, err error) {
	held = make([]bool, len(ids))
	if len(ids) == 0 {
		return held, nil, nil
	}
	try := ids[:min(len(ids), MaxBatchLocks)]
	if l.s != nil {
		held, unlock, err := l.s.tryLockMany(ctx, ids, try)
		unlock, err = l.keep(unlock, err)
		return held, unlock, err
	}
	c, got, err := l.open(ctx, "try many", l.begin+idArray(tryManySQL, try, tryManySQLEnd))
	if err != nil {
		return nil, nil, err
	}
	if len(got) != len(try) {
		l.discard(c)
		return nil, nil, fmt.Errorf("pglock: try many: %d results for %d ids", len(got), len(try))
	}
	some := false
	for i, t := range got {
		held[i] = t
		some = some || t
	}
	if some {
		return held, l.unlocker(c), nil
	}
	return held, nil, l.rollback(ctx, c, "try many")
}

// WaitMany waits until no other holder has the lock on any of ids, without
// taking them. On the session it holds nothing while it waits: each id is
// released (notified) or found free by a probe, the first of which goes in
// the next round trip. In transaction mode, on one pool connection, it takes
// and at once releases the shared lock on each, in the order given, in one
// round trip.
// pgflight calls it holding no lock, so it cannot deadlock with another
// batch. On failure it returns a non-nil error and holds no lock.
func (l *Locker) WaitMany(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if l.s != nil {
		return l.s.waitMany(ctx, ids)
	}
	c, _, err := l.open(ctx, "wait many", l.begin+idArray(waitManySQL, ids, waitManySQLEnd))
	if err != nil {
		return err
	}
	l.release(c)
	return nil
}

// idArray returns prefix, ids as a comma-separated list of integer
// literals, and end.
func idArray(prefix string, ids []int64, end string) string {
	b := make([]byte, 0, len(prefix)+21*len(ids)+len(end))
	b = append(b, prefix...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, end...))
}
