package main

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// recipeLockSQL is the recipe's lock statement, with the id computed by
// recipeLockID rather than in SQL; recipe_test.go checks the two agree.
const recipeLockSQL = "select pg_advisory_xact_lock($1)"

// recipe is a faithful Go port of the Django recipe cache_chained_calculation
// (the "gist" of the notes): the cache key is the md5 of the key; on a
// miss the caller begins a transaction on a pooled connection, takes
// pg_advisory_xact_lock on an id made of the nibble 0xc and 60 bits of the
// md5, reads the cache again, computes and stores if it still misses, and
// commits, which releases the lock. Every caller that misses holds a
// connection and a transaction while it waits, and waiters take the
// exclusive lock one after another. The pool has pgxpool's default size.
type recipe struct{ d *deps }

func newRecipe(d *deps) *recipe { return &recipe{d} }

func (c *recipe) get(ctx context.Context, key string, fn computeFunc) (string, error) {
	sum := md5.Sum([]byte(key))
	rkey := c.d.prefix + ":" + hex.EncodeToString(sum[:])
	v, err := c.d.rdb.Get(ctx, rkey).Result()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", err
	}
	tx, err := c.d.pool.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("recipe: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, does nothing
	if _, err := tx.Exec(ctx, recipeLockSQL, recipeLockID(sum)); err != nil {
		return "", fmt.Errorf("recipe: lock: %w", err)
	}
	if v, err = cacheAside(ctx, c.d.rdb, rkey, c.d.ttl, fn); err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("recipe: commit: %w", err)
	}
	return v, nil
}

// recipeLockID is the recipe's advisory lock id for a key whose md5 is sum:
// (x'c'::bigint << 60) | ('x' || substr(md5(key), 1, 15))::bit(60)::bigint,
// that is the nibble 0xc above the first 60 bits of the md5.
func recipeLockID(sum [md5.Size]byte) int64 {
	return int64(0xc<<60 | binary.BigEndian.Uint64(sum[:8])>>4)
}
