package memcachedstore

import "context"

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
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if ctx.Done() == nil {
		return fn()
	}
	type result struct {
		val   T
		err   error
		panic any
	}
	// Unbuffered: a result goes only to a caller still waiting for it, and
	// the goroutine sees through ctx a caller that has left, so it never
	// blocks for good.
	done := make(chan result)
	go func() {
		var r result
		// A panic in fn is re-raised in the caller if it still waits, as
		// it would be without the goroutine; if not, it crashes the
		// program rather than vanish.
		defer func() {
			if p := recover(); p != nil {
				r.panic = p
			}
			select {
			case done <- r:
			case <-ctx.Done():
				if r.panic != nil {
					panic(r.panic)
				}
			}
		}()
		r.val, r.err = fn()
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			panic(r.panic)
		}
		return r.val, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// callErr is [call] for an fn that returns only an error.
func callErr(ctx context.Context, fn func() error) error {
	_, err := call(ctx, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}
