package pgflight_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgflight/pgflight"
)

// With a stale window, a caller that finds an expired value gets it at once
// while one background refresh replaces it.
func ExampleWithStaleTTL() {
	g, _ := pgflight.New(pgflight.Config{TTL: 20 * time.Millisecond})
	defer g.Close()
	ctx := context.Background()
	price := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return v, nil }
	}

	v, _ := pgflight.Fetch(ctx, g, "price", price("v1"), pgflight.WithStaleTTL(time.Hour))
	fmt.Println(v)
	time.Sleep(30 * time.Millisecond) // v1 is now stale
	v, _ = pgflight.Fetch(ctx, g, "price", price("v2"), pgflight.WithStaleTTL(time.Hour))
	fmt.Println(v, "(stale, served at once; a refresh runs in the background)")
	for v != "v2" {
		time.Sleep(time.Millisecond)
		v, _ = pgflight.Fetch(ctx, g, "price", price("v3"), pgflight.WithStaleTTL(time.Hour))
	}
	fmt.Println(v)
	// Output:
	// v1
	// v1 (stale, served at once; a refresh runs in the background)
	// v2
}

// A computation that finds nothing says so with ErrMissing; the answer is
// cached (for Config.MissingTTL) like a value, in every process.
func ExampleErrMissing() {
	g, _ := pgflight.New(pgflight.Config{MissingTTL: time.Minute})
	defer g.Close()
	lookups := 0
	findUser := func(ctx context.Context) (string, error) {
		lookups++
		return "", fmt.Errorf("user 7 not found: %w", pgflight.ErrMissing)
	}
	for range 3 {
		_, err := pgflight.Fetch(context.Background(), g, "user:7", findUser)
		fmt.Println(errors.Is(err, pgflight.ErrMissing), err)
	}
	fmt.Println("lookups:", lookups)
	// Output:
	// true user 7 not found: missing
	// true user 7 not found: missing
	// true user 7 not found: missing
	// lookups: 1
}

// FetchMany reads many keys at once and computes the missing ones with one
// call; keys the call does not return are cached as missing.
func ExampleFetchMany() {
	g, _ := pgflight.New(pgflight.Config{})
	defer g.Close()
	ctx := context.Background()
	names := map[string]string{"1": "ada", "2": "grace"}
	load := func(ctx context.Context, ids []string) (map[string]string, error) {
		fmt.Println("loading", len(ids), "users")
		out := map[string]string{}
		for _, id := range ids {
			if n, ok := names[id]; ok {
				out[id] = n
			}
		}
		return out, nil
	}
	users, _ := pgflight.FetchMany(ctx, g, []string{"1", "2", "3"}, load)
	fmt.Println(users["1"], users["2"], len(users))
	users, _ = pgflight.FetchMany(ctx, g, []string{"1", "2", "3"}, load)
	fmt.Println(users["1"], users["2"], len(users))
	// Output:
	// loading 3 users
	// ada grace 2
	// ada grace 2
}
