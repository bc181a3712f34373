package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// The batch statements, each one statement for the whole batch.
const (
	getManySQL = "select key, value from {{table}} where key = any($1::bytea[]) and (expires_at > now()) is true"
	setManySQL = "insert into {{table}} (key, value, expires_at)" +
		" select k, v, now() + d from unnest($1::bytea[], $2::bytea[], $3::interval[]) as u(k, v, d)" +
		" on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at"
)

// Parameter types of the batch statements.
var (
	getManyOIDs = []uint32{pgtype.ByteaArrayOID}
	setManyOIDs = []uint32{pgtype.ByteaArrayOID, pgtype.ByteaArrayOID, pgtype.IntervalArrayOID}
)

// GetMany returns the values stored under keys that have not expired, in
// order, with one SELECT ... WHERE key = ANY($1). A nil value is a miss; a
// stored empty value is a non-nil empty slice. A key given twice gets its
// value twice, in two copies. Every value belongs to the caller.
func (s *Store) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	vals := make([][]byte, len(keys))
	if len(keys) == 0 {
		return vals, nil
	}
	stored := make([][]byte, len(keys))
	at := make(map[string][]int, len(keys)) // stored key → positions in keys
	for i, k := range keys {
		stored[i] = storedKey(k)
		at[string(stored[i])] = append(at[string(stored[i])], i)
	}
	_, err := s.run(ctx, s.getMany, getManyOIDs, []any{stored}, func(row [][]byte) {
		for _, i := range at[string(row[0])] {
			vals[i] = clone(row[1])
		}
	})
	if err != nil {
		return nil, s.wrap(ctx, "get many", err)
	}
	return vals, nil
}

// SetMany stores vals[i] under keys[i] for ttls[i], as Set does, in one
// INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE. A key given
// more than once gets its last value and TTL: PostgreSQL cannot update one
// row twice in one statement, so SetMany sends each key once. It sends the
// keys in byte order, so that two batches that share keys lock their rows
// in the same order and cannot deadlock. If SetMany fails, it has stored
// none of the batch.
func (s *Store) SetMany(ctx context.Context, keys []string, vals [][]byte, ttls []time.Duration) error {
	if len(vals) != len(keys) || len(ttls) != len(keys) {
		return fmt.Errorf("pgstore: set many: %d keys, %d values, %d ttls", len(keys), len(vals), len(ttls))
	}
	if len(keys) == 0 {
		return nil
	}
	last := make(map[string]int, len(keys))
	for i, k := range keys {
		last[k] = i
	}
	type entry struct {
		key []byte
		i   int
	}
	entries := make([]entry, 0, len(last))
	for i, k := range keys {
		if last[k] == i {
			entries = append(entries, entry{storedKey(k), i})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	ks := make([][]byte, len(entries))
	vs := make([][]byte, len(entries))
	ds := make([]pgtype.Interval, len(entries))
	for j, e := range entries {
		ks[j], vs[j], ds[j] = e.key, vals[e.i], interval(ttls[e.i])
		if vs[j] == nil {
			vs[j] = []byte{} // NULL is not a value; an empty one is
		}
	}
	if _, err := s.run(ctx, s.setMany, setManyOIDs, []any{ks, vs, ds}, nil); err != nil {
		return s.wrap(ctx, "set many", err)
	}
	return nil
}
