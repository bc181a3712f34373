package pglock

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxBatchLocks caps the locks [Locker.TryLockMany] takes in one
// transaction. Each lock takes a slot of PostgreSQL's shared lock table,
// whose exhaustion fails every session on the server, so a batch of more ids
// takes only the first MaxBatchLocks free ones and reports the rest as not
// taken.
const MaxBatchLocks = 256

// The batch statements. The ids go into an array literal of integers.
const (
	tryManySQL     = "begin; select pg_try_advisory_xact_lock(x) from unnest('{"
	tryManySQLEnd  = "}'::bigint[]) as t(x)"
	waitManySQL    = "select pg_advisory_xact_lock_shared(x) from unnest('{"
	waitManySQLEnd = "}'::bigint[]) as t(x); rollback"
)

// TryLockMany takes, without waiting and in one transaction on one pool
// connection, the lock on every id that no other session holds, trying them
// in the order given (callers pass ascending ids). held[i] reports whether
// it took ids[i]. It takes at most [MaxBatchLocks] locks.
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
	c, err := l.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	got, err := runColumn(ctx, c, idArray(tryManySQL, try, tryManySQLEnd))
	if err == nil && len(got) != len(try) {
		err = fmt.Errorf("%d results for %d ids", len(got), len(try))
	}
	if err != nil {
		l.discard(c)
		return nil, nil, fmt.Errorf("pglock: try many: %w", ctxErr(ctx, err))
	}
	took := false
	for i, t := range got {
		held[i] = t
		took = took || t
	}
	if took {
		return held, l.unlocker(c), nil
	}
	if _, err := run(ctx, c, rollbackSQL); err != nil {
		l.discard(c)
		return nil, nil, fmt.Errorf("pglock: try many: %w", ctxErr(ctx, err))
	}
	l.release(c)
	return held, nil, nil
}

// WaitMany waits until no other session holds the exclusive lock on any of
// ids, without taking them: on one pool connection it takes and at once
// releases the shared lock on each, in the order given, in one round trip.
// pgflight calls it holding no lock, so it cannot deadlock with another
// batch. On failure it returns a non-nil error and holds no lock.
func (l *Locker) WaitMany(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	c, _, err := l.open(ctx, "wait many", "begin; "+idArray(waitManySQL, ids, waitManySQLEnd))
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

// runColumn is run for sql whose last result has one boolean column: it
// returns that column, row by row.
func runColumn(ctx context.Context, c *pgxpool.Conn, sql string) ([]bool, error) {
	var col []bool
	var err error
	mrr := c.Conn().PgConn().Exec(ctx, sql)
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		col = col[:0]
		for rr.NextRow() {
			v := rr.Values()
			col = append(col, len(v) > 0 && len(v[0]) == 1 && v[0][0] == 't')
		}
		if _, rerr := rr.Close(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if cerr := mrr.Close(); cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return col, nil
}
