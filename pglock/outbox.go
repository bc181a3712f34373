package pglock

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The outbox's statements. Each runs with the simple protocol (values are
// quoted into the text by pgx), so that nothing outlives its statement:
// PgBouncer in transaction pooling carries them, and so does a Tx of a
// pool whose statement cache is on.
//
// ensureOutboxSQL creates the table if it is missing. Only then does it
// take a transaction-scoped advisory lock of a fixed two-int key (a space
// of its own: the Locker's locks take one bigint), so that concurrent
// creators wait for each other instead of failing on pg_type's unique
// index; the lock lasts until the creator's transaction ends, which
// happens once per database. The insert and its notification are one
// statement: at COMMIT both take effect, on ROLLBACK neither.
var (
	//go:embed outbox.sql
	outboxSchema    string
	ensureOutboxSQL = ensureTableSQL(outboxTable, outboxLockKey2, outboxSchema)
	invalidateSQL   = ensureOutboxSQL + "; insert into " + outboxTable + " (namespace, keys) select $1, $2::bytea[] from pg_notify('" +
		broadcastChannel + "', $3)"
)

const (
	// outboxTable is the outbox's table (outbox.sql), in the first schema
	// of the search_path.
	outboxTable = "pgflight_outbox"
	// outboxLockKey1 and outboxLockKey2 ("pgfl", "obox") guard the
	// table's creation.
	outboxLockKey1, outboxLockKey2 = 0x7067666c, 0x6f626f78
	// outboxTopic is the broadcast topic (see [Locker.Broadcast]) of an
	// invalidation's commit; the message is its namespace. A namespace
	// holds no ':', so no Group's topic is this one.
	outboxTopic = "pgflight:outbox"
	// claimSQL takes the oldest unclaimed rows of a namespace past an id;
	// rows another processor holds are skipped, not awaited.
	claimSQL = "select id, keys from " + outboxTable + " where namespace = $1 and id > $2 order by id limit " +
		"100 for update skip locked"
	claimLimit = 100
	doneSQL    = "delete from " + outboxTable + " where id = any($1::int8[])"
	// outboxSweep is how often, by default, a handler looks for rows without being
	// told: rows whose handler failed, rows a crashed process had
	// claimed, rows committed while no handler listened.
	outboxSweep = 5 * time.Second
	// outboxBatchTimeout bounds one claimed batch: its rows stay locked
	// that long at most while this process lives.
	outboxBatchTimeout = time.Minute
	// outboxDoneTimeout bounds the delete and commit of a handled batch.
	outboxDoneTimeout = 10 * time.Second
)

// ensureTableSQL returns the block that creates table by schema if it is
// missing, under the advisory transaction lock (outboxLockKey1, key2); see
// ensureOutboxSQL.
func ensureTableSQL(table string, key2 int, schema string) string {
	return "do $pgflight$ begin if to_regclass('" + table + "') is null then perform pg_advisory_xact_lock(" +
		strconv.Itoa(outboxLockKey1) + ", " + strconv.Itoa(key2) + "); " + schema + " end if; end $pgflight$"
}

// appendText appends to sql a literal of s that the server decodes from
// hex, so that no byte of s can change the statement's meaning whatever
// the server's string settings; appendBytea does the same for bytea.
func appendText(sql []byte, s string) []byte {
	return append(appendBytea(append(sql, "convert_from("...), s), ", 'UTF8')"...)
}

func appendBytea(sql []byte, s string) []byte {
	sql = append(sql, "decode('"...)
	sql = hex.AppendEncode(sql, []byte(s))
	return append(sql, "', 'hex')"...)
}

// ErrInvalidKey is wrapped by the error [Invalidate] and
// [Locker.HandleInvalidations] return for an empty key or a namespace that
// pgflight's Config.Namespace would refuse.
var ErrInvalidKey = errors.New("pglock: invalid key")

// An Execer runs a statement: pgx.Tx, *pgx.Conn and *pgxpool.Pool are
// Execers. It must accept a pgx.QueryExecMode as the first argument, as
// those do; Invalidate passes pgx.QueryExecModeSimpleProtocol.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Invalidate records, in the application's transaction tx, the
// invalidation of keys in pgflight namespace namespace: when tx commits,
// every process whose Groups of that namespace use a Locker of the same
// database deletes their shared entries and local copies, as
// pgflight.Group.Delete does; if tx rolls back, nothing happens. Call it
// in the transaction that changes the data the keys were computed from.
//
// It inserts one row into the outbox table pgflight_outbox and sends a
// notification, both taking effect at COMMIT. A process that crashes
// right after COMMIT loses nothing: the row is processed by whichever
// process handling the namespace sees it first ([Locker.HandleInvalidations]),
// at least once, and deleted then. Rows of a namespace that no process
// handles stay in the table until one does.
//
// The first call on a database creates the table (outbox.sql), in tx,
// under an advisory transaction lock; a role that may not create tables
// needs [CreateOutbox] run once by one that may. Invalidate uses the
// simple protocol, so it works through PgBouncer in transaction pooling.
// With a pool or a connection outside a transaction as tx, the row is
// committed at once.
//
// namespace must be 1 to 128 bytes of printable ASCII other than space
// and ':', as Config.Namespace; every key must be non-empty, and may hold
// any bytes. Invalid input returns an error wrapping [ErrInvalidKey] and
// sends nothing. No keys is a no-op. ctx bounds the statement; on failure
// the application's transaction is aborted, as any failed statement
// leaves it.
func Invalidate(ctx context.Context, tx Execer, namespace string, keys ...string) error {
	if err := checkNamespace(namespace); err != nil {
		return fmt.Errorf("pglock: invalidate: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	bs := make([][]byte, len(keys))
	for i, k := range keys {
		if k == "" {
			return fmt.Errorf("pglock: invalidate: key %d of %d is empty: %w", i, len(keys), ErrInvalidKey)
		}
		bs[i] = []byte(k)
	}
	payload := outboxTopic + " " + base64.StdEncoding.EncodeToString([]byte(namespace))
	if _, err := tx.Exec(ctx, invalidateSQL, pgx.QueryExecModeSimpleProtocol, namespace, bs, payload); err != nil {
		return fmt.Errorf("pglock: invalidate: %w", err)
	}
	return nil
}

// CreateOutbox creates the tables of transactional invalidation, if they
// are missing, through db: the outbox of [Invalidate] (outbox.sql) and the
// tag versions of [InvalidateTags] and [Clear] (tags.sql). Those create
// them on demand; CreateOutbox is for deployments whose application role
// may not run DDL: run it once, at migration time, as a role that may. ctx
// bounds the statement.
func CreateOutbox(ctx context.Context, db Execer) error {
	if _, err := db.Exec(ctx, ensureOutboxSQL+"; "+ensureTagsSQL, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("pglock: create outbox: %w", err)
	}
	return nil
}

// checkNamespace refuses what pgflight's Config.Namespace refuses.
func checkNamespace(ns string) error {
	if ns == "" || len(ns) > 128 {
		return fmt.Errorf("namespace of %d bytes, want 1 to 128: %w", len(ns), ErrInvalidKey)
	}
	for i := 0; i < len(ns); i++ {
		if c := ns[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("namespace %+q: byte %#x at %d is not printable ASCII other than space and ':': %w", ns, c, i, ErrInvalidKey)
		}
	}
	return nil
}

// HandleInvalidations calls handle with the keys of every invalidation of
// namespace committed through [Invalidate], by any process, until stop is
// called. pgflight's Groups call it (the pgflight InvalidationSource
// contract) with a handle that deletes each key, as Group.Delete does.
//
// A goroutine of its own processes the outbox's rows of namespace on the
// pool, never on the lock session, which stays free for the locks handle
// takes: in a transaction it claims up to 100 rows (select ... for update
// skip locked), calls handle once per row, deletes the rows whose handle
// returned nil and commits, until none is left. A row whose handle failed
// stays for a later pass; so do the rows of a process that dies while it
// holds them, which PostgreSQL releases with its connection. Processing is
// therefore at least once: handle must be idempotent. Several handlers of
// one namespace (in this process or others) share the rows: each row goes
// to one of them.
//
// A pass runs when a commit of namespace is notified (through the lock
// session, which stays connected while handlers are registered, as for
// [Locker.Subscribe]), when the session listens again after a gap, and
// every 5 seconds. In transaction mode there is no session: passes run
// every 5 seconds only. A missing outbox table counts as an empty one.
//
// handle's ctx ends when stop is called, and a minute after the batch was
// claimed; its rows stay locked until it returns. stop waits for a pass in
// progress to end, and the rows handled by then are still deleted. The
// pool must resolve pgflight_outbox through the same search_path as the
// applications that call Invalidate. A pass first asks, on the lock
// session, whether the namespace has rows at all; only if it has does it
// take one pool connection, for as long as it runs. So an idle handler
// (every sweep, every start) costs the application no connection. Every
// commit of namespace wakes every handler of it in the fleet: each runs
// one claim, and those that find the rows taken skip them at once.
func (l *Locker) HandleInvalidations(namespace string, handle func(ctx context.Context, keys []string) error) (stop func(), err error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("pglock: handle invalidations: %w", err)
	}
	if handle == nil {
		return nil, errors.New("pglock: handle invalidations: nil handle")
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &outboxHandler{l: l, ns: namespace, handle: handle, kick: make(chan struct{}, 1), done: make(chan struct{})}
	unsubscribe := func() {}
	if l.s != nil {
		unsubscribe, err = l.Subscribe(outboxTopic, func(msg []byte) {
			if string(msg) == namespace {
				h.wake()
			}
		}, h.wake)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("pglock: handle invalidations: %w", err)
		}
	} else {
		h.wake()
	}
	go h.run(ctx)
	return func() {
		unsubscribe()
		cancel()
		<-h.done
	}, nil
}

// An outboxHandler processes one namespace's outbox rows for one handle.
type outboxHandler struct {
	l      *Locker
	ns     string
	handle func(ctx context.Context, keys []string) error
	kick   chan struct{} // a pass is due (cap 1)
	done   chan struct{} // closed when run returns
}

// wake makes a pass due. It never blocks.
func (h *outboxHandler) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run makes the passes until ctx ends.
func (h *outboxHandler) run(ctx context.Context) {
	defer close(h.done)
	sweep := time.NewTicker(h.l.sweep)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		case <-sweep.C:
		}
		h.pass(ctx)
	}
}

// pass processes the namespace's rows, oldest first, in batches, until it
// has seen them all. Rows left by a failed handle are passed over, not
// retried at once; an error of the database ends the pass, and the next
// wake or sweep tries again.
func (h *outboxHandler) pass(ctx context.Context) {
	if !h.anyRows(ctx) {
		return
	}
	after := int64(0)
	for ctx.Err() == nil {
		last, n, err := h.batch(ctx, after)
		if err != nil || n < claimLimit {
			return
		}
		after = last
	}
}

// batch claims the rows past id after, handles them and deletes the
// handled ones, in one transaction. It returns the last id claimed and
// how many rows were.
func (h *outboxHandler) batch(ctx context.Context, after int64) (last int64, n int, err error) {
	ctx, cancel := context.WithTimeout(ctx, outboxBatchTimeout)
	defer cancel()
	tx, err := h.l.pool.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer func() { // after Commit, a no-op
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), outboxDoneTimeout)
		defer rcancel()
		tx.Rollback(rctx)
	}()
	rows, err := tx.Query(ctx, claimSQL, pgx.QueryExecModeSimpleProtocol, h.ns, after)
	if err != nil {
		return 0, 0, missingOK(err)
	}
	type row struct {
		id   int64
		keys [][]byte
	}
	var claimed []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.keys); err != nil {
			rows.Close()
			return 0, 0, err
		}
		claimed = append(claimed, r)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, missingOK(err)
	}
	if len(claimed) == 0 {
		return 0, 0, nil
	}
	var handled []int64
	for _, r := range claimed {
		keys := make([]string, len(r.keys))
		for i, k := range r.keys {
			keys[i] = string(k)
		}
		if h.handle(ctx, keys) == nil {
			handled = append(handled, r.id)
		}
	}
	// What was handled is recorded even if stop was called meanwhile: it
	// is one round trip, and saves every handle a second delivery.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), outboxDoneTimeout)
	defer dcancel()
	if len(handled) > 0 {
		if _, err := tx.Exec(dctx, doneSQL, pgx.QueryExecModeSimpleProtocol, handled); err != nil {
			return 0, 0, err
		}
	}
	if err := tx.Commit(dctx); err != nil {
		return 0, 0, err
	}
	return claimed[len(claimed)-1].id, len(claimed), nil
}

// missingOK returns nil for a missing outbox table (SQLSTATE 42P01): no
// one has invalidated anything in a transaction yet.
func missingOK(err error) error {
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42P01" {
		return nil
	}
	return err
}

// anyRows reports whether the outbox may hold rows of the namespace. With
// a lock session it asks there first, in the session's next round trip, so
// that a pass that finds nothing, the common case (every sweep, and every
// start of a Group), takes no pool connection; a pool connection is taken
// only to claim rows. A failed check says yes: the claim decides.
func (h *outboxHandler) anyRows(ctx context.Context) bool {
	if h.l.s == nil {
		return true
	}
	sql := appendText([]byte("select 1 from "+outboxTable+" where namespace = "), h.ns)
	sql = append(sql, " limit 1"...)
	rows, err := h.l.s.query(ctx, string(sql))
	if err != nil {
		return missingOK(err) != nil
	}
	return len(rows) > 0
}
