package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgflight/pgflight/internal/ctxerr"
)

// binary asks for every parameter and every result column in PostgreSQL's
// binary format: bytea travels as its bytes, not as hex text.
var binary = []int16{pgtype.BinaryFormatCode}

// run sends sql with args, of the types oids, on a pool connection and
// calls row with the raw values of each result row, which are only valid
// during the call. It returns the rows the statement affected.
//
// If the table is missing and the Store may create it, run creates it and
// sends the statement once more.
func (s *Store) run(ctx context.Context, sql string, oids []uint32, args []any, row func([][]byte)) (int64, error) {
	n, err := s.runOnce(ctx, sql, oids, args, row)
	if err != nil && isUndefinedTable(err) {
		if s.manualSchema {
			return 0, fmt.Errorf("table %s does not exist (create it with Store.CreateSchema, or apply Store.Schema): %w", s.names.table, err)
		}
		if err := s.createSchema(ctx); err != nil {
			return 0, err
		}
		n, err = s.runOnce(ctx, sql, oids, args, row)
	}
	return n, err
}

// runOnce is run without the schema creation.
//
// With prepared statements on, it runs sql through the connection's
// statement cache (pgx's QueryExecModeCacheStatement): after a
// connection's first use of sql, one round trip that the server neither
// parses nor plans again. A transaction pooler breaks that, since the
// round trip that prepares may reach one server connection and the one
// that executes another: the server then answers that the statement does
// not exist (or, preparing, that it already does), before running
// anything. runOnce then turns prepared statements off for the Store and
// runs sql unprepared.
func (s *Store) runOnce(ctx context.Context, sql string, oids []uint32, args []any, row func([][]byte)) (int64, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	if s.prepared.Load() {
		n, err := runPrepared(ctx, c.Conn(), sql, args, row)
		if !isPoolerError(err) {
			return n, err
		}
		s.prepared.Store(false)
	}
	return runUnprepared(ctx, c.Conn(), sql, oids, args, row)
}

// runPrepared runs sql through conn's statement cache.
func runPrepared(ctx context.Context, conn *pgx.Conn, sql string, args []any, row func([][]byte)) (int64, error) {
	rows, _ := conn.Query(ctx, sql, append([]any{pgx.QueryExecModeCacheStatement}, args...)...)
	for rows.Next() {
		if row != nil {
			row(rows.RawValues())
		}
	}
	rows.Close()
	return rows.CommandTag().RowsAffected(), rows.Err()
}

// runUnprepared runs sql in one round trip (Parse, Bind, Execute, Sync)
// with the unnamed statement and declared parameter types, so that it
// needs no statement description from an earlier round trip. It talks to
// pgconn directly because pgx's exec mode, the other way to do so, sends
// parameters and results as text, which doubles every value in hex. The
// parameters are encoded with the connection's type map; a []byte goes as
// it is.
func runUnprepared(ctx context.Context, conn *pgx.Conn, sql string, oids []uint32, args []any, row func([][]byte)) (int64, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		if b, ok := a.([]byte); ok {
			params[i] = b
			continue
		}
		var err error
		if params[i], err = conn.TypeMap().Encode(oids[i], pgtype.BinaryFormatCode, a, nil); err != nil {
			return 0, fmt.Errorf("encode parameter %d: %w", i+1, err)
		}
	}
	rr := conn.PgConn().ExecParams(ctx, sql, params, oids, binary, binary)
	for rr.NextRow() {
		if row != nil {
			row(rr.Values())
		}
	}
	tag, err := rr.Close()
	return tag.RowsAffected(), err
}

// isPoolerError reports whether err says that the server connection does
// not hold the prepared statements the client connection prepared on it:
// invalid_sql_statement_name ("prepared statement ... does not exist") or
// duplicate_prepared_statement.
func isPoolerError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "26000" || pgErr.Code == "42P05")
}

// wrap names op in err, and ctx's error if ctx ended (see internal/ctxerr).
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	return ctxerr.Wrap(ctx, "pgstore", op, err)
}
