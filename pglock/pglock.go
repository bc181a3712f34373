package pglock

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The statements of the protocol. Each runs in one round trip with the simple
// query protocol, so that no prepared statement is needed (PgBouncer in
// transaction pooling mode); the id goes between a prefix and its End as an
// integer literal (see statement). lockSQL and trySQL follow the Locker's
// begin statement (see beginSQL), in the same round trip.
const (
	lockSQL      = "select pg_advisory_xact_lock("
	lockSQLEnd   = ")"
	trySQL       = "select pg_try_advisory_xact_lock("
	trySQLEnd    = ")"
	followSQL    = "select pg_advisory_xact_lock_shared("
	followSQLEnd = "); rollback"
	commitSQL    = "commit"
)

// ErrBusy is returned in transaction mode, without queuing beyond the short
// [WithBusyWait], by every locking method when the Locker already uses as
// many connections as [WithMaxConns] allows. The caller holds no lock. pgflight then computes
// without the cluster lock and counts it.
var ErrBusy = errors.New("pglock: connection cap reached")

// errUnlocked is returned by an unlock func called more than once.
var errUnlocked = errors.New("pglock: unlock: already unlocked")

// A Locker takes PostgreSQL advisory locks on 64-bit ids. By default every
// lock operation of the Locker goes through one lock session, a PostgreSQL
// connection of its own that it opens from the pool's configuration; with
// [WithTransactionMode], each held lock and each wait uses a pool
// connection inside a transaction. See the package documentation for both
// protocols.
//
// Create a Locker with [New]; the zero Locker is not usable. A Locker is safe
// for concurrent use by multiple goroutines.
type Locker struct {
	pool *pgxpool.Pool
	s    *session // the lock session; nil in transaction mode
	// sem holds one token per pool connection the Locker uses (acquiring,
	// waiting or holding). Its capacity is the connection cap.
	sem chan struct{}
	// lockSQL and trySQL are the prefixes of the statements that begin a
	// lock's transaction: BEGIN, the keepalive settings, then the lock.
	lockSQL, trySQL string
	// begin opens a lock's transaction with its settings (beginSQL); the
	// batch statements follow it too.
	begin    string
	busyWait time.Duration
	tries    int           // attempts at opening a transaction: the pool's size + 1
	sweep    time.Duration // WithOutboxSweep
	// tagsReady says pgflight_tags exists: InvalidateTags need not check.
	tagsReady atomic.Bool
}

// An Option configures a [Locker] in [New].
type Option func(*options)

type options struct {
	maxConns   int
	keepalive  time.Duration
	busyWait   time.Duration
	txMode     bool
	maxLocks   int
	probeEvery time.Duration
	sweep      time.Duration
}

// WithMaxLocks caps the locks the Locker's session holds, is trying, or
// probes (a probe takes a shared lock per id for one statement) at once. A flight past the cap waits for a lock to be released, within its
// context (pgflight bounds it with Config.LockWait); it does not compute
// without the lock. n < 1 means the default. It does not apply in
// transaction mode, where [WithMaxConns] caps the locks.
//
// Each lock takes a slot of PostgreSQL's shared lock table, which holds
// max_locks_per_transaction × (max_connections + max_prepared_transactions)
// locks for the whole server (6,400 with the defaults; the server lends more
// from spare memory, but only that product is guaranteed), and filling it
// fails every session on the server, logins included. A fleet of N
// processes holds at most N × n advisory locks: keep that well below the
// table's size, leaving room for the application's own locks.
//
// Default: 256, so 25 processes at the defaults hold at most the nominal
// table of a stock server.
func WithMaxLocks(n int) Option {
	return func(o *options) { o.maxLocks = n }
}

// WithProbeInterval sets how often the session checks, while any follower
// of this process waits, whether the ids they await are still held. A
// holder whose process dies releases its locks with its session but
// notifies nobody; the probe is how followers learn it, within about d, and
// also how they recover a release notified while the session was
// reconnecting. Each probe is one statement for all awaited ids, and none is
// sent while no one waits. d <= 0 means the default.
//
// Default: 5 milliseconds.
func WithProbeInterval(d time.Duration) Option {
	return func(o *options) { o.probeEvery = d }
}

// WithOutboxSweep sets how often each namespace's handler of transactional
// invalidations ([Invalidate], [Locker.HandleInvalidations]) looks for
// outbox rows without being woken: the fallback that delivers rows a
// crashed handler left claimed, or whose handle failed. Each sweep is one
// short transaction on a pool connection, sent whether or not the
// application ever calls Invalidate. d <= 0 means the default.
//
// Default: 5 seconds.
func WithOutboxSweep(d time.Duration) Option {
	return func(o *options) { o.sweep = d }
}

// WithTransactionMode makes the Locker hold each lock in a transaction of
// its own on a pool connection (pg_advisory_xact_lock), instead of on the
// Locker's one lock session. It is the mode for PgBouncer in transaction
// pooling, which cannot carry session locks or LISTEN; its cost is one pool
// connection per key in flight, held or awaited, capped by [WithMaxConns].
func WithTransactionMode() Option {
	return func(o *options) { o.txMode = true }
}

// WithMaxConns caps the pool connections a Locker in transaction mode uses
// at once, counting both held locks and waits: a further call waits at most [WithBusyWait] for one
// to end, then returns [ErrBusy]. n < 1 means the default.
//
// Default: min(16, max(2, MaxConns/2)), where MaxConns is the pool's. Each
// waiter pins a connection for the whole wait, so an uncapped Locker could
// take the whole pool during a mass miss and starve the application's own
// queries; half the pool (two connections at least, 16 at most) leaves them
// room. A cap above the pool's MaxConns is lowered to it. For more
// concurrent locks, give the Locker a pool of its own and raise the cap.
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = n }
}

// WithBusyWait sets how long a call in transaction mode waits for a
// connection under the cap of [WithMaxConns] to come free before it returns [ErrBusy]. The wait is
// short on purpose: it covers a release that is still committing (pgflight
// hands a value to its callers before it releases the lock, so a caller
// may be back for its next key a moment before its last connection is
// free), not a queue behind other keys' computations, which a flight for a
// distinct key gains nothing from. d < 0 means no wait.
//
// Default: 20 milliseconds.
func WithBusyWait(d time.Duration) Option {
	return func(o *options) { o.busyWait = d }
}

// New returns a Locker on pool's database. By default it opens its lock
// session, one connection configured as pool's connections are but never
// taken from or returned to pool, at its first lock; it takes pool
// connections only for [Locker.Held], and in transaction mode. The pool
// stays the caller's: the Locker never closes it. Call [Locker.Close] to
// end the session when the Locker is no longer needed; a Locker that
// becomes unreachable closes its session too.
func New(pool *pgxpool.Pool, opts ...Option) *Locker {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	pcfg := pool.Config()
	if o.maxConns < 1 {
		o.maxConns = defaultMaxConns(int(pcfg.MaxConns))
	}
	// More than the pool holds would queue the application's own queries
	// behind lock waits.
	o.maxConns = min(o.maxConns, max(1, int(pcfg.MaxConns)))
	if o.busyWait == 0 {
		o.busyWait = defaultBusyWait
	}
	begin := beginSQL(o.keepalive, pcfg.ConnConfig.RuntimeParams)
	if o.sweep <= 0 {
		o.sweep = outboxSweep
	}
	l := &Locker{
		sweep:    o.sweep,
		pool:     pool,
		busyWait: max(o.busyWait, 0),
		tries:    int(pcfg.MaxConns) + 1,
		sem:      make(chan struct{}, o.maxConns),
		lockSQL:  begin + lockSQL,
		trySQL:   begin + trySQL,
		begin:    begin,
	}
	if !o.txMode {
		if o.maxLocks < 1 {
			o.maxLocks = defaultMaxLocks
		}
		if o.probeEvery <= 0 {
			o.probeEvery = defaultProbeInterval
		}
		cfg := pcfg.ConnConfig.Config.Copy()
		cfg.RuntimeParams["application_name"] = sessionAppName(cfg.RuntimeParams["application_name"])
		l.s = newSession(cfg, sessionSetupSQL(o.keepalive, cfg.RuntimeParams), o.probeEvery, o.maxLocks)
		// The session's goroutine refers to the session, not to l: once l is
		// unreachable (an unlock func refers to l, so no lock is held), the
		// session is closed.
		runtime.AddCleanup(l, func(s *session) { go s.close() }, l.s)
	}
	return l
}

// keep makes unlock keep l reachable until it runs: an unreachable Locker
// closes its session, which would silently release the lock while its
// holder still computes.
func (l *Locker) keep(unlock func(context.Context) error, err error) (func(context.Context) error, error) {
	if unlock == nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		defer runtime.KeepAlive(l)
		return unlock(ctx)
	}, err
}

// sessionAppName returns the application_name of a lock session whose pool
// connections carry app, so that pg_stat_activity and pg_locks tell it
// apart. PostgreSQL keeps 63 bytes of it.
func sessionAppName(app string) string {
	const suffix = "pgflight-lock"
	if app == "" {
		return suffix
	}
	if len(app) > 63-len(suffix)-1 {
		app = app[:63-len(suffix)-1]
	}
	return app + " " + suffix
}

// Close ends the Locker's lock session: PostgreSQL releases every lock it
// holds, and calls waiting on it return an error. Later calls fail. Close
// does nothing in transaction mode, where each lock ends with its
// transaction, and returns nil.
func (l *Locker) Close() error {
	if l.s != nil {
		l.s.close()
	}
	return nil
}

// Stats returns the Locker's counters since [New], and its state now.
func (l *Locker) Stats() Stats {
	if l.s == nil {
		return Stats{Held: len(l.sem)}
	}
	return l.s.snapshot()
}

const defaultBusyWait = 20 * time.Millisecond

func defaultMaxConns(poolMax int) int {
	return min(16, max(2, poolMax/2))
}

// Lock blocks until the caller holds the exclusive lock on id or ctx ends.
// ctx bounds the wait; it is not kept.
//
// On the lock session (the default) Lock tries the lock, and while another
// holder has it, waits for its release (notified, or found by the probe)
// and tries again; the wait holds only the id's follow marker (see the
// package doc). Another caller of
// this Locker holding id counts as another holder. In transaction mode it
// sends BEGIN, the settings and pg_advisory_xact_lock(id) in one round trip
// on a pool connection that it keeps until unlock.
//
// On success Lock returns unlock, which releases the lock (pg_advisory_unlock
// and a notification on the session; COMMIT in transaction mode); unlock's
// ctx bounds only the wait for that. Whatever unlock returns, the lock is
// released or already gone: on the session the release is sent whatever ctx
// does; in transaction mode, if it cannot commit, or its ctx is already
// done, it closes the connection, so PostgreSQL drops the lock. An error
// from unlock can also mean the lock was lost earlier (errors.Is(err,
// ErrSessionLost) on the session; a dead connection in transaction mode).
// Calling unlock again returns an error and does nothing.
//
// On failure Lock returns a non-nil error and holds no lock: an error
// wrapping ctx.Err() when ctx ended (errors.Is(err, context.Canceled)
// holds), the session's or server's error, or in transaction mode
// [ErrBusy] when the connection cap is reached.
//
// In transaction mode a blocking exclusive request queues in PostgreSQL:
// followers that arrive after it wait behind it, one by one, instead of
// waking together (see [Locker.LockOrFollow]), and two Lock calls on one id
// from one goroutine deadlock until ctx ends.
func (l *Locker) Lock(ctx context.Context, id int64) (unlock func(context.Context) error, err error) {
	if l.s != nil {
		return l.keep(l.s.lock(ctx, id))
	}
	c, _, err := l.open(ctx, "lock", statement(l.lockSQL, id, lockSQLEnd))
	if err != nil {
		return nil, err
	}
	return l.unlocker(c), nil
}

// LockOrFollow takes the exclusive lock on id if no one holds it, and
// otherwise waits until its holder releases it, without taking it.
//
// If the try succeeds, LockOrFollow returns unlock, exactly as [Locker.Lock]
// does. If another holder has the lock, it waits for the release and returns
// a nil unlock and a nil error: the holder has finished, and the caller
// holds nothing. Every follower of an id wakes at once: on the session they
// share one notification; in transaction mode they wait with
// pg_advisory_xact_lock_shared(id), which the holder's COMMIT grants to all
// in one pass, since holders take the lock only with a try.
//
// ctx bounds the wait. On failure LockOrFollow returns a non-nil error and
// holds no lock, as [Locker.Lock] does.
func (l *Locker) LockOrFollow(ctx context.Context, id int64) (unlock func(context.Context) error, err error) {
	if l.s != nil {
		return l.keep(l.s.lockOrFollow(ctx, id))
	}
	c, col, err := l.open(ctx, "lock", statement(l.trySQL, id, trySQLEnd))
	if err != nil {
		return nil, err
	}
	if took(col) {
		return l.unlocker(c), nil
	}
	if _, err := run(ctx, c, statement(followSQL, id, followSQLEnd)); err != nil {
		l.discard(c)
		return nil, fmt.Errorf("pglock: follow: %w", ctxErr(ctx, err))
	}
	l.release(c)
	return nil, nil
}

// unlocker returns the unlock func for the lock held by c's transaction. The
// func keeps c reachable until it runs: a pgx connection that becomes
// unreachable can be closed by the garbage collector, silently dropping the
// lock while its holder still computes.
func (l *Locker) unlocker(c *pgxpool.Conn) func(context.Context) error {
	var done atomic.Bool
	return func(ctx context.Context) error {
		if done.Swap(true) {
			return errUnlocked
		}
		if err := ctx.Err(); err != nil {
			l.discard(c)
			return fmt.Errorf("pglock: unlock: connection closed instead of commit: %w", err)
		}
		if _, err := run(ctx, c, commitSQL); err != nil {
			l.discard(c)
			return fmt.Errorf("pglock: unlock: %w", ctxErr(ctx, err))
		}
		l.release(c)
		return nil
	}
}

// InUse reports how many pool connections the Locker uses right now: in
// transaction mode, those holding a lock, waiting for one, or being
// acquired, at most the cap set by [WithMaxConns]. The lock session is not
// a pool connection: by default InUse is 0 (see [Locker.Stats]).
func (l *Locker) InUse() int {
	return len(l.sem)
}

// ctxErr makes err wrap ctx.Err() when ctx has ended, so that callers can
// test for context.Canceled and context.DeadlineExceeded whichever way pgx
// reported the interruption (a closed connection or SQLSTATE 57014).
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}
