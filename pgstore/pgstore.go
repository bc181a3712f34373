package pgstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The statements of the Store, rendered with its table's names (see
// names.render), each a single statement with binary parameters of
// declared types (see run). Times come from the server's clock, now(), so
// that processes with skewed clocks agree on what has expired; a TTL
// travels as an interval.
//
// Reads test the expiry as (expires_at > now()) is true, which no index
// can serve, so that the planner always finds rows by key. With a bare
// expires_at > now() it may choose the expiry index instead (it did for
// GetMany on a fresh table), and statistics taken before the latest writes
// make that choice likelier as the table ages: such a scan reads every
// live row.
const (
	getSQL = "select value from {{table}} where key = $1::bytea and (expires_at > now()) is true"
	setSQL = "insert into {{table}} (key, value, expires_at) values ($1::bytea, $2::bytea, now() + $3::interval)" +
		" on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at"
	deleteSQL = "delete from {{table}} where key = $1::bytea"
)

// Parameter types of the statements.
var (
	getOIDs    = []uint32{pgtype.ByteaOID}
	setOIDs    = []uint32{pgtype.ByteaOID, pgtype.ByteaOID, pgtype.IntervalOID}
	deleteOIDs = []uint32{pgtype.ByteaOID}
)

// A Store is a cache of byte values in a PostgreSQL table. It is safe for
// concurrent use by multiple goroutines.
//
// Create a Store with [New]; the zero value is not usable. Call
// [Store.Close] to stop its janitor.
type Store struct {
	pool         *pgxpool.Pool
	names        names
	manualSchema bool
	sweepLimit   int

	// The statements, rendered with names.
	get, set, del, getMany, setMany, sweep, schema string

	// prepared is whether statements go through the connections' statement
	// caches (see run). It starts as the pool's configuration says, and
	// turns off for good at the first sign of a transaction pooler.
	prepared atomic.Bool

	stop      context.CancelFunc // ends the janitor's context
	done      chan struct{}      // closed when the janitor has returned
	closeOnce sync.Once
}

// New returns a Store that keeps its entries in a table of pool's database,
// configured by opts. It checks the options, and returns an error naming
// the first one it refuses, such as a table name that is not a plain
// identifier ([WithTable]). It sends nothing to the server: the table is
// created at the first statement that finds it missing (see
// [WithManualSchema]).
//
// The Store works with any pool configuration, PgBouncer in transaction
// pooling included. With pgx's default, QueryExecModeCacheStatement, it
// uses the connections' prepared statements, which the server neither
// parses nor plans again (a hit then takes about half as long); with any
// other DefaultQueryExecMode,
// or as soon as a statement fails because the server connection lacks its
// prepared statement (a transaction pooler switched it), it sends each
// statement unprepared, still in one round trip. The pool stays the
// caller's: the Store never closes it.
//
// Unless [WithSweepInterval] turns it off, New starts a janitor goroutine
// that deletes expired rows; [Store.Close] stops it.
func New(pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	o := options{table: defaultTable}
	for _, opt := range opts {
		opt(&o)
	}
	if pool == nil {
		return nil, fmt.Errorf("pgstore: new: nil pool")
	}
	n, err := parseTable(o.table)
	if err != nil {
		return nil, fmt.Errorf("pgstore: new: WithTable: %w", err)
	}
	if o.sweepInterval == 0 {
		o.sweepInterval = defaultSweepInterval
	}
	if o.sweepLimit < 1 {
		o.sweepLimit = defaultSweepLimit
	}
	s := &Store{
		pool:         pool,
		names:        n,
		manualSchema: o.manualSchema,
		sweepLimit:   o.sweepLimit,
		get:          n.render(getSQL),
		set:          n.render(setSQL),
		del:          n.render(deleteSQL),
		getMany:      n.render(getManySQL),
		setMany:      n.render(setManySQL),
		sweep:        n.render(sweepSQL),
		schema:       n.render(schemaSQL),
		done:         make(chan struct{}),
	}
	cc := pool.Config().ConnConfig
	s.prepared.Store(cc.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement && cc.StatementCacheCapacity > 0)
	if o.sweepInterval < 0 {
		close(s.done)
		s.stop = func() {}
		return s, nil
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.janitor(ctx, o.sweepInterval)
	return s, nil
}

// Close stops the Store's janitor and waits for it to return, cancelling a
// sweep in flight. It does not close the pool, and the Store's other
// methods keep working afterwards. Close is idempotent and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(s.stop)
	<-s.done
	return nil
}

// Get returns the value stored under key if it has not expired, or
// ok == false with a nil error if there is none. An expired row is a miss
// even before the janitor deletes it. The returned slice is a copy that
// belongs to the caller. ctx bounds the wait for a pool connection and the
// statement.
func (s *Store) Get(ctx context.Context, key string) (val []byte, ok bool, err error) {
	_, err = s.run(ctx, s.get, getOIDs, []any{storedKey(key)}, func(row [][]byte) {
		val, ok = clone(row[0]), true
	})
	if err != nil {
		return nil, false, s.wrap(ctx, "get", err)
	}
	return val, ok, nil
}

// Set stores val under key for ttl, replacing any previous value and its
// expiry, in one INSERT ... ON CONFLICT DO UPDATE. The entry expires ttl
// after the statement's start on the server's clock. ttl is rounded up to
// whole microseconds, PostgreSQL's resolution, and is at least one: a
// non-positive ttl never means "no expiry". Any time.Duration fits.
//
// If Set fails, the entry holds either its old value or val, nothing else.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if val == nil {
		val = []byte{} // NULL is not a value; an empty one is
	}
	if _, err := s.run(ctx, s.set, setOIDs, []any{storedKey(key), val, interval(ttl)}, nil); err != nil {
		return s.wrap(ctx, "set", err)
	}
	return nil
}

// Delete removes the entry stored under key. Deleting a missing key is not
// an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if _, err := s.run(ctx, s.del, deleteOIDs, []any{storedKey(key)}, nil); err != nil {
		return s.wrap(ctx, "delete", err)
	}
	return nil
}

// interval returns ttl as a PostgreSQL interval of whole microseconds,
// rounded up, at least one. An interval holds any time.Duration, and
// now() plus the largest (292 years) is far inside timestamptz's range, so
// no TTL overflows.
func interval(ttl time.Duration) pgtype.Interval {
	us := int64(ttl / time.Microsecond)
	if ttl%time.Microsecond > 0 {
		us++
	}
	return pgtype.Interval{Microseconds: max(us, 1), Valid: true}
}

// clone copies a value that the connection will reuse. A non-NULL empty
// value stays a non-nil empty slice.
func clone(b []byte) []byte {
	v := make([]byte, len(b))
	copy(v, b)
	return v
}
