package pglock

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// closeTimeout bounds closing a connection that failed, which sends
// Terminate to the server. It does not depend on any caller's ctx, which may
// already be done.
const closeTimeout = time.Second

// acquire takes a slot of the connection cap, then a pool connection. It
// returns ErrBusy if no slot comes free within l.busyWait. On failure it
// holds neither.
func (l *Locker) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		if err := l.awaitSlot(ctx); err != nil {
			return nil, err
		}
	}
	c, err := l.pool.Acquire(ctx)
	if err != nil {
		<-l.sem
		return nil, fmt.Errorf("pglock: acquire: %w", ctxErr(ctx, err))
	}
	// TODO(fault tolerance): a hung or partitioned holder keeps its lock until
	// the server notices (notes §1.3, §1.5). A per-Locker option could add
	// "set local idle_in_transaction_session_timeout = …" to the acquire
	// statement, above the longest computation, without another round trip.
	// It is not set by default because computations may be long.
	return c, nil
}

// open takes a pool connection and runs sql, the statement that begins a
// lock's transaction, on it, and returns the first column of its last
// result, read as booleans (see runColumn). If
// the connection turns out to be dead, open discards it and runs sql again
// on another, as many times as the pool has connections. After a server
// restart the pool's idle connections are all dead, and pgxpool pings only
// those idle for over a second, so without the retries the first flights
// after a restart would fail open one by one. A dead session holds no
// lock, so running sql again is safe.
//
// On failure open holds no connection and no lock; op names the operation
// in the error.
func (l *Locker) open(ctx context.Context, op, sql string) (*pgxpool.Conn, []bool, error) {
	for attempt := 1; ; attempt++ {
		c, err := l.acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		col, err := runColumn(ctx, c, sql)
		if err == nil {
			return c, col, nil
		}
		dead := c.Conn().IsClosed() && ctx.Err() == nil
		l.discard(c)
		if !dead || attempt >= l.tries {
			return nil, nil, fmt.Errorf("pglock: %s: %w", op, ctxErr(ctx, err))
		}
	}
}

// took reports whether the statement whose last result is col took its
// lock: a try that read "t".
func took(col []bool) bool { return len(col) == 1 && col[0] }

// awaitSlot waits at most l.busyWait for a slot of the cap and takes it.
func (l *Locker) awaitSlot(ctx context.Context) error {
	if l.busyWait <= 0 {
		return ErrBusy
	}
	t := time.NewTimer(l.busyWait)
	defer t.Stop()
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return fmt.Errorf("pglock: acquire: %w", ctx.Err())
	}
}

// release returns c, idle and outside any transaction, to the pool and frees
// its slot. pgxpool destroys c instead if it is somehow still in a
// transaction, which drops any lock with it.
func (l *Locker) release(c *pgxpool.Conn) {
	c.Release()
	<-l.sem
}

// discard takes c out of the pool and closes it, then frees its slot.
// Closing the connection ends its session, so PostgreSQL releases its
// transaction's locks and withdraws its waits, whatever state the
// connection was left in: discard never returns a connection holding a lock
// to the pool. If pgx already closed c (a cancelled or failed read), the
// cancel request and Terminate it sends go on in the background, and discard
// does not wait for them.
func (l *Locker) discard(c *pgxpool.Conn) {
	conn := c.Hijack()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	// The error is ignored: Close closes the socket in every case.
	_ = conn.Close(ctx)
	<-l.sem
}

// statement returns prefix, id as a decimal integer literal, and end. An
// int64 literal cannot inject anything, and it lets the statement run with
// the simple protocol, without parameters.
func statement(prefix string, id int64, end string) string {
	b := make([]byte, 0, len(prefix)+20+len(end))
	b = append(b, prefix...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, end...)
	return string(b)
}

// run sends sql, which may hold several statements, in one round trip with
// the simple query protocol, whatever the pool's default query exec mode,
// and reads every result. It returns the first error, and whether the first
// column of the last row of the last result read "t" (the result of a try).
func run(ctx context.Context, c *pgxpool.Conn, sql string) (bool, error) {
	col, err := runColumn(ctx, c, sql)
	return len(col) > 0 && col[len(col)-1], err
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
		// The MultiResultReader's error is the first one of the query.
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return col, nil
}

// rollback ends the transaction on c, which took no lock, and returns c to
// the pool; on failure it closes c instead. op names the operation in the
// error.
func (l *Locker) rollback(ctx context.Context, c *pgxpool.Conn, op string) error {
	if _, err := run(ctx, c, rollbackSQL); err != nil {
		l.discard(c)
		return fmt.Errorf("pglock: %s: %w", op, ctxErr(ctx, err))
	}
	l.release(c)
	return nil
}
