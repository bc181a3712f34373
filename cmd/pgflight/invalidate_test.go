package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/internal/testserver"
)

// "pgflight invalidate" records keys, tags and a Clear in one committed
// transaction, after creating the tables on a database that had none, and
// refuses bad input having written nothing.
func TestInvalidate(t *testing.T) {
	pg, err := testserver.StartPostgres(testserver.PostgresOptions{}) // no tables yet
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	ctx := context.Background()
	db, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	ns := "cli" + time.Now().Format("150405")
	out, errOut, err := runCmd(t, "invalidate", "-database-url", pg.URL(), "-namespace", ns,
		"-create-tables", "-key", "user:1", "-key", "user:2", "-tag", "team:7", "-clear")
	if err != nil {
		t.Fatalf("invalidate: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "invalidation committed in ") || !strings.Contains(out, "2 keys, 1 tags, the whole namespace") {
		t.Errorf("output %q", out)
	}
	var keys [][]byte
	if err := db.QueryRow(ctx, "select keys from pgflight_outbox where namespace = $1", ns).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if got := []string{string(keys[0]), string(keys[1])}; !slices.Equal(got, []string{"user:1", "user:2"}) {
		t.Errorf("outbox keys %q", got)
	}
	rows, err := db.Query(ctx, "select convert_from(tag, 'UTF8') || '=' || version from pgflight_tags where namespace = $1 order by tag", ns)
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions, []string{"=1", "team:7=1"}) {
		t.Errorf("tag versions %q, want Clear and team:7 at 1", versions)
	}

	for name, args := range map[string][]string{
		"nothing to do":  {"invalidate", "-database-url", pg.URL(), "-namespace", ns},
		"bad namespace":  {"invalidate", "-database-url", pg.URL(), "-namespace", "a:b", "-tag", "x", "-key", "k"},
		"empty tag":      {"invalidate", "-database-url", pg.URL(), "-namespace", ns, "-key", "k", "-tag", ""},
		"stray argument": {"invalidate", "-database-url", pg.URL(), "-namespace", ns, "-tag", "x", "extra"},
	} {
		if _, _, err := runCmd(t, args...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	var n int
	if err := db.QueryRow(ctx, "select count(*) from pgflight_outbox").Scan(&n); err != nil || n != 1 {
		t.Errorf("outbox rows after refused calls = %d, %v; want 1 (the empty tag's call, refused, wrote no key)", n, err)
	}
}
