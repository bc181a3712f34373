package pglock_test

import (
	"context"
	"fmt"
	"log"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, databaseURL()) // e.g. os.Getenv("DATABASE_URL")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	l := pglock.New(pool)

	const id = 0x70676c6f636b // a lock id: pgflight hashes each key to one
	unlock, err := l.LockOrFollow(ctx, id)
	if err != nil {
		log.Fatal(err) // pgflight would compute without the lock instead
	}
	if unlock == nil {
		fmt.Println("another process computed the value: read it from the cache")
		return
	}
	fmt.Println("holding the lock: re-check the cache, compute, store")
	if err := unlock(ctx); err != nil {
		log.Print(err) // the lock is released anyway
	}
	// Output: holding the lock: re-check the cache, compute, store
}

// exampleTB lets examples use the shared test server, which reports
// failures through a testing.TB.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                      {}
func (exampleTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// databaseURL returns the URL of the examples' database: the shared test
// server's (PGFLIGHT_TEST_DATABASE_URL, or one started for the test binary).
func databaseURL() string { return testserver.PostgresURL(exampleTB{}) }
