package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// sweepSQL deletes at most $1 expired rows. SKIP LOCKED lets the janitors
// of several processes sweep at once, each taking other rows, and never
// makes a sweep wait for a writer; the expiry index finds the rows.
const sweepSQL = "delete from {{table}} where key in" +
	" (select key from {{table}} where expires_at <= now() limit $1::int8 for update skip locked)"

var sweepOIDs = []uint32{pgtype.Int8OID}

// Sweep deletes expired rows, at most the Store's [WithSweepLimit] in one
// statement, and returns how many it deleted. The janitor calls it; call it
// yourself when the janitor is off. A Sweep never creates the table: on a
// missing table it returns an error. ctx bounds the wait for a connection
// and the statement; on failure nothing is deleted.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	n, err := s.runOnce(ctx, s.sweep, sweepOIDs, []any{int64(s.sweepLimit)}, nil)
	if err != nil {
		return 0, s.wrap(ctx, "sweep", err)
	}
	return n, nil
}

// janitor sweeps every interval until ctx ends, each time until a sweep
// deletes fewer rows than the limit. It ignores errors, such as a table
// that does not exist yet or a server that is down: the next tick tries
// again, and expired rows are misses meanwhile.
func (s *Store) janitor(ctx context.Context, every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := s.Sweep(ctx)
			if err != nil || n < int64(s.sweepLimit) {
				break
			}
		}
	}
}
