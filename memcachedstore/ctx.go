package memcachedstore

import (
	"context"

	"github.com/pgflight/pgflight/internal/detach"
)

// call runs fn, the Store's use of the client, and returns its results, or
// ctx.Err() as soon as ctx ends, whichever comes first. gomemcache takes no
// ctx, so this is the only way a call can end with its ctx.
//
// A ctx that has already ended fails the call before fn starts. A ctx that
// can never end (context.Background) runs fn in the caller's goroutine. Any
// other runs fn in a goroutine of its own, which costs a goroutine and a
// channel per call; if ctx ends first, fn carries on in the background
// until the client's own timeouts end it (see the package doc), and its
// results are dropped.
func call[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	if ctx.Done() == nil {
		return fn()
	}
	return detach.Call(ctx, func(context.Context) (T, error) { return fn() })
}

// callErr is [call] for an fn that returns only an error.
func callErr(ctx context.Context, fn func() error) error {
	_, err := call(ctx, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}
