package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/pgstore"
)

// pgflight on PostgreSQL alone: one pool carries both the locks and the
// cached values, and every process of the fleet shares them.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, databaseURL()) // e.g. os.Getenv("DATABASE_URL")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	cache, err := pgstore.New(pool) // table pgflight_cache, created on first use
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	locker := pglock.New(pool)
	defer locker.Close()

	g, err := pgflight.New(pgflight.Config{
		Cache:     cache,
		Locker:    locker,
		Namespace: "example",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	// Forget the value a previous run of this example left behind.
	if err := g.Delete(ctx, "greeting"); err != nil {
		log.Fatal(err)
	}

	for range 2 {
		greeting, err := pgflight.Fetch(ctx, g, "greeting", func(ctx context.Context) (string, error) {
			fmt.Println("computing")
			return "hello", nil
		}, pgflight.WithTTL(time.Minute))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(greeting)
	}
	// Output:
	// computing
	// hello
	// hello
}

// For an application role that may not run DDL: the Store never creates
// its table, and a role that may do so runs CreateSchema once, for
// example at deployment (or a DBA applies the text of Store.Schema).
func ExampleWithManualSchema() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, databaseURL())
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	s, err := pgstore.New(pool, pgstore.WithTable("example_cache"), pgstore.WithManualSchema())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateSchema(ctx); err != nil { // as the owner, once
		log.Fatal(err)
	}

	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		log.Fatal(err)
	}
	val, ok, err := s.Get(ctx, "k")
	fmt.Printf("%q %v %v\n", val, ok, err)
	// Output: "v" true <nil>
}

// exampleTB lets examples use the shared test server, which reports
// failures through a testing.TB.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                      {}
func (exampleTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// databaseURL returns the URL of the examples' database: the shared test
// server's (PGFLIGHT_TEST_DATABASE_URL, or one started for the test binary).
func databaseURL() string { return testserver.PostgresURL(exampleTB{}) }
