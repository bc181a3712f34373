// Package detach runs a blocking call that cannot be interrupted in a
// goroutine of its own, so that its caller can return when its context
// ends. redisstore and memcachedstore use it where their client would
// otherwise wait out its own timeouts.
package detach

import "context"

// Call calls fn(ctx) in a goroutine of its own and returns its results, or
// ctx.Err() as soon as ctx ends, whichever comes first. A ctx that has
// already ended fails the call before fn starts. If ctx ends first, fn
// carries on in the background with the same ended ctx until the client's
// own timeouts end it, and its results are dropped.
//
// A panic in fn is re-raised in the caller if it still waits, as it would
// be without the goroutine; if not, it crashes the program rather than
// vanish.
func Call[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
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
		r.val, r.err = fn(ctx)
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

// Err is [Call] for an fn that returns only an error.
func Err(ctx context.Context, fn func(context.Context) error) error {
	_, err := Call(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}
