package pgstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// schemaSQL creates the table and its index; see the file for the columns.
//
//go:embed schema.sql
var schemaSQL string

// schemaLockSQL serialises schema creation across the fleet. CREATE ...
// IF NOT EXISTS is not safe against itself: two sessions that both find
// the table missing both create it, and the second fails with a unique
// violation on pg_type's index. Under this lock, taken in the same
// transaction as the DDL, the second finds the table. The two-key form of
// the advisory lock never meets pglock's one-key locks; the keys spell
// "pgst" and "sche".
const schemaLockSQL = "select pg_advisory_xact_lock(1885828980, 1936943205);\n"

// indexSuffix names the expiry index after its table.
const indexSuffix = "_expires_at"

// Limits of a table name part: PostgreSQL's identifiers hold 63 bytes, and
// the index name adds indexSuffix to the table's.
const (
	maxIdentLen = 63
	maxTableLen = maxIdentLen - len(indexSuffix)
)

// undefinedTable is the SQLSTATE of a statement on a missing table.
const undefinedTable = "42P01"

// names holds the quoted names that the statements are rendered with.
type names struct {
	table string // pgx.Identifier{...}.Sanitize() of the table, maybe schema-qualified
	index string // the expiry index's bare name, quoted
	plain string // the table as the user gave it, for messages
}

// parseTable checks name as described at [WithTable] and quotes it.
func parseTable(name string) (names, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return names{}, fmt.Errorf("table %q: more than one '.'", name)
	}
	for i, p := range parts {
		limit := maxIdentLen
		if i == len(parts)-1 {
			limit = maxTableLen
		}
		if err := checkIdent(p, limit); err != nil {
			return names{}, fmt.Errorf("table %q: %w", name, err)
		}
	}
	table := parts[len(parts)-1]
	return names{
		table: pgx.Identifier(parts).Sanitize(),
		index: pgx.Identifier{table + indexSuffix}.Sanitize(),
		plain: name,
	}, nil
}

// checkIdent reports whether s is an identifier of at most limit bytes of
// ASCII letters, digits and '_' that does not start with a digit.
func checkIdent(s string, limit int) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > limit:
		return fmt.Errorf("name of %d bytes, at most %d", len(s), limit)
	case s[0] >= '0' && s[0] <= '9':
		return errors.New("name starts with a digit")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Errorf("byte %#02x at %d, want ASCII letters, digits and '_'", c, i)
		}
	}
	return nil
}

// render fills the names into sql.
func (n names) render(sql string) string {
	return strings.NewReplacer("{{table}}", n.table, "{{index}}", n.index).Replace(sql)
}

// Schema returns the statements that create the Store's table and index,
// the text of the package's schema.sql with the Store's names filled in.
// They are idempotent (IF NOT EXISTS). Hand them to whoever may run DDL
// when the Store runs with [WithManualSchema].
func (s *Store) Schema() string { return s.schema }

// CreateSchema creates the Store's table and its index if they do not
// exist, in one transaction under an advisory lock, so that any number of
// processes may call it at once. A Store calls it by itself when a
// statement finds the table missing, unless it was made
// [WithManualSchema]. ctx bounds the wait for the lock and the DDL; on
// failure nothing has been created.
func (s *Store) CreateSchema(ctx context.Context) error {
	if err := s.createSchema(ctx); err != nil {
		return s.wrap(ctx, "create schema", err)
	}
	return nil
}

// createSchema is CreateSchema without the package prefix.
func (s *Store) createSchema(ctx context.Context) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	// One simple-protocol message: PostgreSQL runs its statements as one
	// transaction, which the advisory lock lasts for, and which works
	// through PgBouncer's transaction pooling. If it fails, it is rolled
	// back whole and the connection is idle again.
	if _, err := c.Conn().PgConn().Exec(ctx, schemaLockSQL+s.schema).ReadAll(); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// isUndefinedTable reports whether err is PostgreSQL's "relation does not
// exist".
func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == undefinedTable
}
