package pgflight_test

import (
	"context"
	"fmt"

	"github.com/pgflight/pgflight"
)

// Tag the entries computed from a user's row, then invalidate them all
// when the row changes: each is computed again on its next Fetch. With
// pglock as the Locker the invalidation reaches every process, and
// pglock.InvalidateTags does it inside the transaction that changes the
// row.
func ExampleWithTags() {
	g, err := pgflight.New(pgflight.Config{})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	ctx := context.Background()
	computed := 0
	profile := func(context.Context) (string, error) {
		computed++
		return fmt.Sprintf("profile #%d", computed), nil
	}
	for range 2 {
		v, _ := pgflight.Fetch(ctx, g, "profile:42", profile, pgflight.WithTags("user:42"))
		fmt.Println(v)
	}
	if err := g.InvalidateTags(ctx, "user:42"); err != nil {
		panic(err)
	}
	v, _ := pgflight.Fetch(ctx, g, "profile:42", profile, pgflight.WithTags("user:42"))
	fmt.Println(v)
	// Output:
	// profile #1
	// profile #1
	// profile #2
}
