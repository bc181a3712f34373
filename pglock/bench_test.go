package pglock_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight/pglock"
)

// rawLockSQL is the baseline's lock statement, sent with BEGIN in one batch.
const rawLockSQL = "select pg_advisory_xact_lock($1)"

// rawSimpleSQL is the lock as pglock sends it, with the simple protocol.
const rawSimpleSQL = "begin; select pg_advisory_xact_lock(%d)"

// BenchmarkLockUnlock compares a lock and unlock through pglock with the
// same two round trips written by hand with pgx's default extended protocol
// (notes §5: "xact pipelined"). pglock uses the simple protocol, which works
// through PgBouncer whatever the pool's exec mode; raw-simple writes that by
// hand, to tell the protocol's cost (the server parses each statement) from
// pglock's own.
func BenchmarkLockUnlock(b *testing.B) {
	ctx := context.Background()
	pool := newPool(b, 2, pgx.QueryExecModeCacheStatement)
	id := randomID()

	b.Run("raw-xact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			batch := &pgx.Batch{}
			batch.Queue("begin")
			batch.Queue(rawLockSQL, id)
			if err := c.SendBatch(ctx, batch).Close(); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Exec(ctx, "commit"); err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	})
	b.Run("raw-simple", func(b *testing.B) {
		lock := fmt.Sprintf(rawSimpleSQL, id)
		b.ReportAllocs()
		for b.Loop() {
			c, err := pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Conn().PgConn().Exec(ctx, lock).ReadAll(); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Conn().PgConn().Exec(ctx, "commit").ReadAll(); err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	})
	b.Run("pglock", func(b *testing.B) {
		l := pglock.New(pool)
		b.ReportAllocs()
		for b.Loop() {
			unlock, err := l.Lock(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if err := unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pglock-no-keepalive", func(b *testing.B) {
		l := pglock.New(pool, pglock.WithKeepalive(-1))
		b.ReportAllocs()
		for b.Loop() {
			unlock, err := l.Lock(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if err := unlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
