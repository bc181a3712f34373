package pgflight_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// Inspect shows an entry as the Cache holds it, without knowing the value's
// type: here a value, then a negative entry, then a key never computed.
func ExampleInspect() {
	ctx := context.Background()
	cache := memstore.New()
	defer cache.Close()
	g, _ := pgflight.New(pgflight.Config{Cache: cache, Namespace: "shop", TTL: 10 * time.Minute})
	defer g.Close()

	type price struct{ Cents int }
	pgflight.Fetch(ctx, g, "price:42", func(context.Context) (price, error) { return price{1999}, nil })
	pgflight.Fetch(ctx, g, "price:43", func(context.Context) (price, error) {
		return price{}, fmt.Errorf("no product 43: %w", pgflight.ErrMissing)
	})

	for _, key := range []string{"price:42", "price:43", "price:44"} {
		info, err := pgflight.Inspect(ctx, cache, "shop", key)
		if err != nil {
			panic(err)
		}
		if !info.Found {
			fmt.Println(info.Key, "not found")
			continue
		}
		fmt.Printf("%s: %s, %d bytes stored, fresh for %v, missing %v\n",
			info.Key, info.Value, info.Size, info.FreshUntil.Sub(info.ComputedAt), info.Missing)
	}
	// Output:
	// shop:price:42: {"Cents":1999}, 41 bytes stored, fresh for 10m0s, missing false
	// shop:price:43: no product 43: missing, 49 bytes stored, fresh for 30s, missing true
	// shop:price:44 not found
}
