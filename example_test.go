package pgflight_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// The embedded default needs no server: an in-process cache and locker.
func Example() {
	g, err := pgflight.New(pgflight.Config{})
	if err != nil {
		panic(err)
	}
	defer g.Close()

	for range 3 {
		greeting, err := pgflight.Fetch(context.Background(), g, "greeting", func(ctx context.Context) (string, error) {
			fmt.Println("computing")
			return "hello", nil
		})
		if err != nil {
			panic(err)
		}
		fmt.Println(greeting)
	}
	// Output:
	// computing
	// hello
	// hello
	// hello
}

type Report struct {
	Quarter string
	Lines   int
}

// A fleet shares values through Redis and computes each once under a
// PostgreSQL advisory lock. Every replica runs the same code.
func ExampleFetch() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	opt, _ := redis.ParseURL(exampleRedisURL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	g, err := pgflight.New(pgflight.Config{
		Cache:     redisstore.New(rdb),
		Locker:    pglock.New(pool),
		Namespace: "example-fetch",
	})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	defer g.Delete(ctx, "report:2026-q3")

	report, err := pgflight.Fetch(ctx, g, "report:2026-q3", func(ctx context.Context) (Report, error) {
		return Report{Quarter: "2026-q3", Lines: 3}, nil // expensive; runs once across the fleet
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %d lines\n", report.Quarter, report.Lines)
	// Output:
	// 2026-q3: 3 lines
}

// Stats show how much work the Group saved.
func ExampleGroup_Stats() {
	g, _ := pgflight.New(pgflight.Config{})
	defer g.Close()
	for range 5 {
		pgflight.Fetch(context.Background(), g, "answer", func(ctx context.Context) (int, error) { return 42, nil })
	}
	s := g.Stats()
	fmt.Printf("calls: %d, computations: %d, hits: %d\n", s.Hits+s.Misses+s.Coalesced, s.Computations, s.Hits)
	// Output:
	// calls: 5, computations: 1, hits: 4
}

// exampleTB lets examples use the test servers, which report failures
// through a testing.TB.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                      {}
func (exampleTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func exampleDatabaseURL() string { return testserver.PostgresURL(exampleTB{}) }
func exampleRedisURL() string    { return testserver.RedisURL(exampleTB{}) }
