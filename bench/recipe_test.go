package main

import (
	"context"
	"crypto/md5"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// recipeSQL derives the recipe's lock id in SQL, as the notes give it.
const recipeSQL = `select (x'c'::bigint << 60) | ('x' || substr(md5($1), 1, 15))::bit(60)::bigint`

// TestRecipeLockID pins the id of 'user:42', as computed by PostgreSQL.
func TestRecipeLockID(t *testing.T) {
	if got, want := recipeLockID(md5.Sum([]byte("user:42"))), int64(-4220526022920225885); got != want {
		t.Errorf("recipeLockID(user:42) = %d, want %d", got, want)
	}
}

// TestRecipeLockIDMatchesSQL checks the Go derivation against the SQL one.
func TestRecipeLockIDMatchesSQL(t *testing.T) {
	pg, _ := testServers(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, key := range []string{"user:42", "", "a", "report:2026-q3", "ключ", "k\x01\x7f", strings.Repeat("long key ", 40)} {
		var want int64
		if err := conn.QueryRow(ctx, recipeSQL, key).Scan(&want); err != nil {
			t.Fatalf("%q: %v", key, err)
		}
		if got := recipeLockID(md5.Sum([]byte(key))); got != want {
			t.Errorf("recipeLockID(%q) = %d, SQL says %d", key, got, want)
		}
	}
}
