package main

// The invalidation checker (issue 10, item 5): writers update rows of a
// table of their own in PostgreSQL and invalidate each row's cached value in
// the same transaction, while reader processes Fetch the rows through
// pgflight; each read is then checked against the writers' log. This file
// holds the settings, the invalidation methods and the writers; the
// readers are in checker_reader.go, the check in checker_analysis.go and
// the report in checker_report.go.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
)

// checkEnv carries a reader's checkJob, as JSON, to a reader process (which
// also has workerEnv set, so that main and TestMain hand it to runWorker).
const checkEnv = "PGFLIGHT_BENCH_CHECK"

// A checkJob is what one reader process of the checker does: Fetch random
// rows of Table through a Group of Namespace for Duration from its release,
// in Goroutines goroutines, and check every read against the writers' log
// that the parent streams to it.
type checkJob struct {
	Mode        string        `json:"mode"`       // the invalidation method: a key of invalidations
	LocalTier   bool          `json:"local_tier"` // Config.Local = memstore.New()
	Namespace   string        `json:"namespace"`
	Table       string        `json:"table"` // unquoted
	App         string        `json:"app"`   // application_name and Redis client name
	DatabaseURL string        `json:"database_url"`
	RedisURL    string        `json:"redis_url"`
	Rows        int           `json:"rows"`
	Goroutines  int           `json:"goroutines"`
	Duration    time.Duration `json:"duration"`
	Bound       time.Duration `json:"bound"`      // the lag bound of the report's second count
	ReadPause   time.Duration `json:"read_pause"` // how long a goroutine pauses after each read
	Seed        uint64        `json:"seed"`
	Index       int           `json:"index"` // of the reader among the readers
}

// An invalidation is the method under test: how a writer invalidates the
// cached value of the row it updates, in its transaction, and how a reader
// asks for a row. Each method is one value in invalidations.
type invalidation interface {
	// invalidate records, in tx, that row's cached value (key rowKey(row))
	// of namespace ns is invalid; tx has just updated the row and commits
	// after it.
	invalidate(ctx context.Context, tx pgx.Tx, ns string, row int) error
	// options returns the Fetch options of a read of row.
	options(row int) []pgflight.Option
	// describe says, for the report, what the method does.
	describe() string
}

// invalidations are the methods the checker can run, by name
// (-checker-mode).
var invalidations = map[string]invalidation{
	"keys": keysInvalidation{},
	"tags": tagsInvalidation{},
	// tags+consistent is tags with every read WithConsistentRead: a sync
	// with the lock session before the read.
	"tags+consistent": consistentInvalidation{},
}

// consistentInvalidation is tagsInvalidation with consistent reads.
type consistentInvalidation struct{ tagsInvalidation }

func (consistentInvalidation) options(row int) []pgflight.Option {
	return []pgflight.Option{pgflight.WithTags(rowTag(row)), pgflight.WithConsistentRead()}
}

func (c consistentInvalidation) describe() string {
	return c.tagsInvalidation.describe() + "; every read also `WithConsistentRead()`: before it reads, the reader's Group syncs with its lock session (one round trip, shared with the operations pending then), which returns only once every notification committed before it has been received"
}

// tagsInvalidation is pglock.InvalidateTags of the row's tag: the tag's
// version is incremented in the transaction, and at COMMIT a notification
// makes every Group forget the version it held; its next read of the row
// learns the new one, and the entry, which recorded the old, is a miss.
type tagsInvalidation struct{}

func (tagsInvalidation) invalidate(ctx context.Context, tx pgx.Tx, ns string, row int) error {
	return pglock.InvalidateTags(ctx, tx, ns, rowTag(row))
}

func (tagsInvalidation) options(row int) []pgflight.Option {
	return []pgflight.Option{pgflight.WithTags(rowTag(row))}
}

func (tagsInvalidation) describe() string {
	return "`pglock.InvalidateTags(ctx, tx, ns, tag)` of the row's tag in the writer's transaction, every read `WithTags(tag)`: the tag's version is incremented at COMMIT, and a notification makes every Group forget the version it held, so its next read of the row learns the new one and the entry, which recorded the old, is a miss"
}

// rowTag returns the tag of row's entry.
func rowTag(row int) string { return "row:" + strconv.Itoa(row) }

// keysInvalidation is pglock.Invalidate of the row's key: at COMMIT a
// notification wakes every Group of the namespace, whose handler deletes the
// key (as Group.Delete, ordered after a computation in flight) and
// broadcasts its drop to every local tier.
type keysInvalidation struct{}

func (keysInvalidation) invalidate(ctx context.Context, tx pgx.Tx, ns string, row int) error {
	return pglock.Invalidate(ctx, tx, ns, rowKey(row))
}

func (keysInvalidation) options(int) []pgflight.Option { return nil }

func (keysInvalidation) describe() string {
	return "`pglock.Invalidate(ctx, tx, ns, key)` of the row's key in the writer's transaction: at COMMIT a notification wakes the outbox handler of every reader's Group, one of which deletes the key from Redis (as `Group.Delete`: after a computation of it in flight) and broadcasts the drop to every local tier"
}

// checkMode returns the invalidation method called name.
func checkMode(name string) (invalidation, error) {
	if inv, ok := invalidations[name]; ok {
		return inv, nil
	}
	var names []string
	for n := range invalidations {
		names = append(names, n)
	}
	return nil, fmt.Errorf("unknown checker mode %q (want one of %v)", name, names)
}

// rowKey returns the cache key of row.
func rowKey(row int) string { return "row" + strconv.Itoa(row) }

// The checker's statements, on a table of its own per run, whose name
// checkSQL quotes into them.
const (
	checkCreateSQL = "create table %s (id int primary key, version bigint not null)"
	checkFillSQL   = "insert into %s select g, 0 from generate_series(0, $1 - 1) g"
	checkUpdateSQL = "update %s set version = version + 1 where id = $1 returning version"
	checkSelectSQL = "select version from %s where id = $1"
	checkDropSQL   = "drop table if exists %s"
)

// checkSQL returns statement format with the quoted table name in it.
func checkSQL(format, table string) string {
	return fmt.Sprintf(format, pgx.Identifier{table}.Sanitize())
}

// A write is one committed update: row's version became Version in a
// transaction begun at Begin that COMMIT returned from at Commit (Unix
// times in ns, on the wall clock; Commit is read after COMMIT returned,
// under the log's lock, so it is never earlier than the return).
type write struct {
	Row     int
	Version int64
	Begin   int64
	Commit  int64
}

// errWriteGap reports a log whose versions of a row are not 1, 2, … in
// some order: a write was lost or doubled.
var errWriteGap = errors.New("versions of a row are not 1..n")
