package pglock

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// heldSQL lists the advisory locks of the current database taken with a
// bigint key, held or awaited, with the session of each. waitstart needs
// PostgreSQL 14 or later.
const heldSQL = `select l.pid,
       (l.classid::bigint << 32) | l.objid::bigint,
       l.mode,
       l.granted,
       l.waitstart,
       pg_blocking_pids(l.pid),
       a.application_name
from pg_locks l join pg_stat_activity a using (pid)
where l.locktype = 'advisory'
  and l.objsubid = 1
  and l.database = (select oid from pg_database where datname = current_database())
order by 2, l.granted desc, l.waitstart nulls first, l.pid`

// A Lock is one advisory lock in the current database, held or awaited by
// one PostgreSQL session, as reported by [Locker.Held].
type Lock struct {
	// PID is the process id of the session's backend, as pg_backend_pid()
	// reports it there and pg_terminate_backend(pid) takes it.
	PID int32
	// ID is the lock's 64-bit id.
	ID int64
	// Mode is "ExclusiveLock" (a holder, or an exclusive waiter) or
	// "ShareLock" (a follower).
	Mode string
	// Granted reports whether the session holds the lock; false means it
	// waits for it.
	Granted bool
	// WaitStart is when the session began waiting; zero if Granted.
	WaitStart time.Time
	// BlockedBy lists the PIDs of the sessions that block the session
	// (pg_blocking_pids): for a waiter, the holder and any conflicting waiter
	// queued ahead of it.
	BlockedBy []int32
	// ApplicationName is the session's application_name setting.
	ApplicationName string
}

// Held lists the advisory locks held or awaited in the pool's current
// database by every session, not only the Locker's, ordered by id, holders
// first, then waiters in arrival order. It sees locks taken with a bigint key
// (the form the Locker uses), not those with a pair of int4 keys.
//
// Held runs one query on a pool connection of its own, outside the
// connection cap, with the simple protocol. It reads pg_locks, which is
// costly on a busy server and fails while the lock table is full: it is meant
// for inspection (the pgflight CLI, tests), not for a hot path. It needs
// PostgreSQL 14 or later.
func (l *Locker) Held(ctx context.Context) ([]Lock, error) {
	rows, err := l.pool.Query(ctx, heldSQL, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("pglock: held: %w", err)
	}
	locks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Lock, error) {
		var k Lock
		var waitStart *time.Time
		err := row.Scan(&k.PID, &k.ID, &k.Mode, &k.Granted, &waitStart, &k.BlockedBy, &k.ApplicationName)
		if waitStart != nil {
			k.WaitStart = *waitStart
		}
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("pglock: held: %w", err)
	}
	return locks, nil
}
