package pglock_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
)

// Invalidate a user's cached entries in the transaction that changes the
// user: at COMMIT every Group of the namespace, in every process on this
// database, takes them as misses; on ROLLBACK nothing changes. The read
// after the commit is consistent (WithConsistentRead), so it sees the
// invalidation even before the notification would have arrived.
func ExampleInvalidateTags() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, databaseURL()) // e.g. os.Getenv("DATABASE_URL")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	l := pglock.New(pool)
	defer l.Close()
	ns := "example" + time.Now().Format("150405000")
	g, err := pgflight.New(pgflight.Config{Namespace: ns, Locker: l})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	version := 1
	profile := func(context.Context) (string, error) { return fmt.Sprintf("profile v%d", version), nil }
	read := func() string {
		v, err := pgflight.Fetch(ctx, g, "profile:42", profile, pgflight.WithTags("user:42"), pgflight.WithConsistentRead())
		if err != nil {
			log.Fatal(err)
		}
		return v
	}
	fmt.Println(read())

	version = 2 // the application's update of user 42, in its transaction:
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return pglock.InvalidateTags(ctx, tx, ns, "user:42")
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(read())
	// Output:
	// profile v1
	// profile v2
}
