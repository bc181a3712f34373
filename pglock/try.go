package pglock

import "context"

// rollbackSQL ends a transaction whose try failed.
const rollbackSQL = "rollback"

// TryLock takes the exclusive lock on id if no one holds it, and otherwise
// returns at once. If the try succeeds, TryLock returns unlock, exactly as
// [Locker.Lock] does. If another holder has the lock (another caller of this
// Locker included), it returns a nil unlock and a nil error. On the session
// it costs one round trip, shared with whatever else is pending; in
// transaction mode it sends BEGIN and pg_try_advisory_xact_lock(id), and
// rolls back in a second round trip when the try fails. pgflight uses it for background refreshes, so
// that one process refreshes a key and the others skip.
//
// ctx bounds taking a connection and the round trips. On failure TryLock
// returns a non-nil error and holds no lock, as [Locker.Lock] does.
func (l *Locker) TryLock(ctx context.Context, id int64) (unlock func(context.Context) error, err error) {
	if l.s != nil {
		return l.keep(l.s.tryLock(ctx, id))
	}
	c, col, err := l.open(ctx, "try", statement(l.trySQL, id, trySQLEnd))
	if err != nil {
		return nil, err
	}
	if took(col) {
		return l.unlocker(c), nil
	}
	return nil, l.rollback(ctx, c, "try")
}
