package pglock

import (
	"math"
	"strconv"
	"time"
)

// defaultKeepalive is how long, by default, the server may take to notice
// that a lock's client has become unreachable.
const defaultKeepalive = 15 * time.Second

// keepaliveParams are the server settings that [WithKeepalive] sets for a
// lock's transaction. They are user-settable (context "user"), and their
// assign hooks apply them to the session's socket with setsockopt at once;
// SET LOCAL restores the session's values at COMMIT or ROLLBACK.
var keepaliveParams = [...]string{"tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout"}

// WithKeepalive bounds how long the server takes to notice that the client
// holding or awaiting a lock has become unreachable (a host that crashed
// without closing its sockets, a network partition), and so to end its
// session and drop its lock, to about d. Without it the kernel's defaults
// apply, and such a lock is held for hours.
//
// The Locker sets four server settings once on its lock session when it
// connects (in transaction mode, with SET LOCAL in the statement that begins
// each lock's transaction, no extra round trip, so they apply to that
// session's socket only while it holds or awaits a lock):
// tcp_keepalives_idle = d/2 and tcp_keepalives_interval = d/6 (whole
// seconds, at least 1), tcp_keepalives_count = 3, which end an idle
// connection whose client stopped answering, and tcp_user_timeout = d,
// which ends one whose client stopped acknowledging data the server sent.
//
// If the pool's connection string sets any of the four (for example
// ?tcp_keepalives_idle=60), the Locker sets none of them, and the session's
// values apply. d < 0 also sets none; d == 0 means the default. Through
// PgBouncer the settings reach the pooler's connection to the server, not
// the application's connection to the pooler: set PgBouncer's own
// tcp_keepalive and tcp_user_timeout settings as well. tcp_user_timeout
// needs PostgreSQL 12 or later; use d < 0 with older servers.
//
// Default: 15 seconds. A holder's kernel acknowledges probes even while the
// process is frozen or busy, so only an unreachable client is cut off,
// never a slow computation.
func WithKeepalive(d time.Duration) Option {
	return func(o *options) { o.keepalive = d }
}

// beginSQL returns the start of the statement that opens a lock's
// transaction in transaction mode: BEGIN, the settings that keep a server or
// role default from cutting a lock's wait or its transaction short
// (statement_timeout, lock_timeout, idle_in_transaction_session_timeout: a
// computation may take longer than any of them), and, unless d < 0 or
// params (the pool's startup parameters) set one of them already, the
// keepalive settings for d. All are SET LOCAL: they end with the
// transaction.
func beginSQL(d time.Duration, params map[string]string) string {
	return string(appendSettings([]byte("begin; "), "set local ", d, params))
}

// sessionSetupSQL returns the statements that set up a new lock session
// connection, with SET, once: synchronous_commit off, the timeouts that
// must not end it (it is idle between locks; idle_session_timeout,
// PostgreSQL 14 and later, is added by connect) and the keepalive settings
// as beginSQL chooses them.
//
// synchronous_commit is off because the session writes nothing that must
// outlive a crash: a release's pg_notify gives its transaction an id, so
// its COMMIT would otherwise wait for a WAL flush on a durable server, on
// the critical path of every follower; advisory locks and notifications
// are never in the WAL and die with the server anyway.
func sessionSetupSQL(d time.Duration, params map[string]string) string {
	return string(appendSettings([]byte("set synchronous_commit = off; "), "set ", d, params))
}

// appendSettings appends to b, each as verb + "name = value; ", the
// timeouts and keepalive settings described at beginSQL.
func appendSettings(b []byte, verb string, d time.Duration, params map[string]string) []byte {
	b = appendSet(b, verb, "statement_timeout", 0)
	b = appendSet(b, verb, "lock_timeout", 0)
	b = appendSet(b, verb, "idle_in_transaction_session_timeout", 0)
	if d < 0 {
		return b
	}
	for _, p := range keepaliveParams {
		if _, ok := params[p]; ok {
			return b
		}
	}
	if d == 0 {
		d = defaultKeepalive
	}
	d = min(d, math.MaxInt32*time.Millisecond)
	secs := int64(d / time.Second)
	idle := max(1, secs/2)
	interval := max(1, (secs-idle)/3)
	b = appendSet(b, verb, "tcp_keepalives_idle", idle)
	b = appendSet(b, verb, "tcp_keepalives_interval", interval)
	b = appendSet(b, verb, "tcp_keepalives_count", 3)
	return appendSet(b, verb, "tcp_user_timeout", max(1, d.Milliseconds()))
}

// appendSet appends verb + "name = value; " to b.
func appendSet(b []byte, verb, name string, value int64) []byte {
	b = append(b, verb...)
	b = append(b, name...)
	b = append(b, " = "...)
	b = strconv.AppendInt(b, value, 10)
	return append(b, "; "...)
}
