// Package ctxerr names the context's error in a store's errors. Clients
// often report a deadline that cut a call short as a bare i/o timeout, a
// closed connection or a cancelled statement, which errors.Is would not
// match with context.DeadlineExceeded; redisstore and pgstore wrap their
// errors with Wrap so that it does.
package ctxerr

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Wrap returns err as "pkg: op: err", with ctx's error added when ctx has
// ended and err does not already say so.
func Wrap(ctx context.Context, pkg, op string, err error) error {
	if cerr := Err(ctx); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %s: %w: %w", pkg, op, cerr, err)
	}
	return fmt.Errorf("%s: %s: %w", pkg, op, err)
}

// Err is ctx.Err(), or context.DeadlineExceeded once ctx's deadline has
// passed but the timer that makes ctx.Err() report it has not fired yet (a
// socket deadline set from it may fire first).
func Err(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
