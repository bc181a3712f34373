// Package pglock provides a [Locker] on PostgreSQL advisory locks in a pgx
// v5 pool's database, so that a fleet of processes computes each cached
// value once. It implements the pgflight Locker and Follower
// contracts without importing pgflight:
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	if err != nil {
//		return err
//	}
//	g, err := pgflight.New(pgflight.Config{Locker: pglock.New(pool)})
//
// The Locker can also be used alone: [Locker.Lock] returns an unlock func,
// like a [context.CancelFunc] that takes a context.
//
// # The lock session
//
// By default a Locker sends every lock operation of the process through
// one lock session: a PostgreSQL connection it opens from the pool's
// configuration (with application_name ending in "pgflight-lock"), never
// taken from or returned to the pool. Holders take session-level locks
// with pg_try_advisory_lock and release them with pg_advisory_unlock.
// Operations that arrive while a round trip is in flight go together in
// the next one, a single simple-protocol message, so round trips per lock
// fall as load grows, with no delay when the session is idle. The
// connections a process uses stay at one whatever the number of keys in
// flight, and exactly-once holds for all of them, up to the lock budget
// ([WithMaxLocks]).
//
// Waiting costs no connection. A session whose callers await an id holds
// one follow marker for it: a session-level shared advisory lock on the
// id's two int4 halves (PostgreSQL's other advisory key space, which
// pgflight's locks never use; `pgflight locks` does not list them). A
// marker counts against [WithMaxLocks] while held, and markers take at
// most half of it; past that an id goes unmarked, and the probe below
// wakes its followers. A release
// sends pg_notify on channel pgflight_lock, with the id as payload, in the
// same round trip as the unlock, but only if another session holds the
// id's marker: an uncontended release notifies nobody, which matters
// because PostgreSQL signals every LISTENing backend of the database on
// every NOTIFY, whatever its channel (BenchmarkFleetSessions: 256 sessions
// all LISTENing, as under pgflight Groups, took 901 us per uncontended
// lock cycle when every release notified, and 63 us now). The marker is
// taken in the round trip after a failed try, with a probe of the id after
// it in the same statement, so a release that came before the marker is
// seen by that probe. A follower of an earlier pglock, which takes no marker, is
// woken by the probe rather than by a notification, so during a rolling
// deploy its waits last up to one probe interval longer. A session LISTENs while followers of its process
// wait (and for a second after), so that a release reaches the processes
// waiting for something, not every idle process of the fleet; while it has
// nothing to send it waits for notifications. Its LISTEN takes effect before
// a follower's try, in the same round trip. A follower registers its
// interest before it tries the lock, so no release between its try and its
// wait can be missed, and every follower of an id wakes together. A holder
// whose process dies releases its locks with its session but notifies
// nobody: while any follower waits, the session probes the awaited ids every
// [WithProbeInterval] (5 ms) in one statement that holds nothing afterwards
// (a shared transaction-scoped try per id), and wakes the followers of the
// ids it finds free. The probe also recovers a notification lost while a
// session was reconnecting.
//
// Nothing the session sends ever waits inside PostgreSQL, so nothing is
// ever cancelled on the wire: a caller whose context ends stops waiting for
// the answer, and a lock granted to a caller that has left is released at
// once. One session is one PostgreSQL owner, which would grant a lock it
// holds to itself again, so the Locker keeps the ids it holds and answers a
// second caller of the same id "held" without asking the server.
//
// If the connection dies, every lock of the process goes with it: holders
// learn it at unlock (an error wrapping [ErrSessionLost]), followers wake
// and re-check, and the Locker reconnects at the next operation, with
// capped, jittered backoff after a failed attempt (calls fail at once
// meanwhile, and pgflight fails open or closed as configured). A try that
// was in flight when the connection died is sent once more on the new one.
// The session turns off statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout and idle_session_timeout for itself
// and sets its keepalive once ([WithKeepalive]). [Locker.Stats] reports
// operations, round trips, notifications, probes and the wake-ups they
// caused, connections and losses, and the locks held and callers waiting
// now. Call [Locker.Close] to end the session.
//
// # Transaction mode
//
// [WithTransactionMode] keeps the previous design, for PgBouncer in
// transaction pooling, which cannot carry session locks or LISTEN. Every
// lock is a pg_advisory_xact_lock held by an open transaction on one pool
// connection, and unlocking commits that transaction. Acquiring costs one
// round trip (BEGIN and the lock go in one message) and releasing one
// (COMMIT). Transaction scope makes every failure release the lock: this
// mode never returns a connection to the pool inside a transaction; on any
// error it closes the connection, and PostgreSQL drops the session's locks
// and waits with it. The statement that opens each lock's transaction sets
// statement_timeout, lock_timeout and idle_in_transaction_session_timeout
// to 0 with SET LOCAL, so that server or role defaults cannot cut a wait or
// a long computation short.
//
// [Locker.LockOrFollow] takes the lock with pg_try_advisory_xact_lock. When
// another session holds it, it waits for it with
// pg_advisory_xact_lock_shared, then rolls back and returns holding nothing.
// Since holders take the exclusive lock only with a try, no exclusive request
// waits in PostgreSQL's queue, and when the holder commits the lock manager
// grants every shared waiter in one pass (measured with 50 waiters that
// re-check the cache for 5 ms: the last woke 5.4 ms after the release,
// against 299 ms when waiters queued for the exclusive lock).
//
// Its cost is a pool connection per key in flight, held or awaited, and
// through PgBouncer a server connection each. Hence the cap set by
// [WithMaxConns] (half the pool, 2 to 16, never more than the pool): past
// it, calls fail with [ErrBusy] after at most a short [WithBusyWait] (20
// ms) rather than queue for a connection the application may need, and
// pgflight computes without the lock. Cancelling a wait closes its
// connection (pgx sends a cancel request, then terminates the session).
//
// # PgBouncer
//
// Session pooling works in either mode: the client's session is pinned to
// one server connection, LISTEN included. Transaction pooling needs
// [WithTransactionMode]: the default refuses to run there and fails with an
// error naming the option. At connect it first opens a short-lived check
// connection that sets a custom setting on its server session and closes,
// then opens the session, which must not find that setting (a quiet pooler
// lends it the same server session; PostgreSQL gives a new connection a new
// one, and PgBouncer's session pooling resets settings between clients),
// and whose backend (pg_backend_pid()) and own setting must stay the same
// over four rounds (a busy pooler moves its statements). The process never
// holds both connections at once. The check is best
// effort; choose the mode by the deployment. In transaction mode every
// statement goes with the simple query protocol and the id as an integer
// literal, so no prepared statement is involved, whatever the pool's
// DefaultQueryExecMode. (The application's own queries through PgBouncer in
// transaction mode still need an exec mode other than the default
// statement cache.)
//
// # Key space
//
// Advisory locks are per database and per server: a lock excludes only
// sessions connected to the same database of the same PostgreSQL server.
// Every process that shares the work must connect to the same primary and
// the same database, directly or through the same PgBouncer database, and
// never to a read replica, whose locks are its own.
//
// # Guarantees
//
// Locks are an efficiency device, not a correctness guarantee. A holder can
// lose its lock without being told: the server restarts, an operator runs
// pg_terminate_backend, a timeout ends the session, or the network fails.
// The holder learns it only when unlock fails, so a value can occasionally be
// computed twice, and storing it must be idempotent.
//
// # Unreachable clients
//
// The server releases the lock of a crashed process at once, because its
// kernel closes the socket. It releases that of an unreachable client (a
// host that lost power, a network partition) only when it notices, which
// with the kernel's defaults takes hours. So the Locker sets
// tcp_keepalives_idle, tcp_keepalives_interval, tcp_keepalives_count and
// tcp_user_timeout (once on the lock session; with SET LOCAL on each lock's
// transaction in transaction mode): the server then ends such a session,
// and drops its locks, within about 15 seconds. [WithKeepalive] changes that
// bound or turns it off; settings in the connection string take precedence.
// A client that is reachable but frozen (SIGSTOP, a stuck host whose kernel
// still answers) keeps its lock until it resumes; callers elsewhere bound
// their wait with pgflight.Config.LockWait.
//
// [Locker.Held] lists the advisory locks of the database, for inspection.
package pglock
