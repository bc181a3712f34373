package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	detachpkg "github.com/pgflight/pgflight/internal/detach"
)

// appliesDeadlines reports whether go-redis sets the socket deadlines of
// client from ctx deadlines: whether the options of a *redis.Client (the
// Sentinel failover client included), *redis.ClusterClient or *redis.Ring
// have ContextTimeoutEnabled. Any other UniversalClient, such as a wrapper,
// is assumed not to.
func appliesDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// inline reports whether a call with ctx may wait for go-redis in the
// caller's goroutine: ctx can never end, or it has a deadline that go-redis
// applies to the socket itself. Otherwise go-redis would wait for a stalled
// server until its ReadTimeout whatever ctx says, and the call goes through
// [detach].
func (s *Store) inline(ctx context.Context) bool {
	if ctx.Done() == nil {
		return true
	}
	if !s.deadlines {
		return false
	}
	_, ok := ctx.Deadline()
	return ok
}

// Why a goroutine, and not a socket deadline set when ctx ends (tried for
// issue 9 item 18, go-redis v9.23): without ContextTimeoutEnabled, go-redis
// hands context.Background() to the code that sets the socket deadlines and
// reads the reply (baseClient.context, pool.Conn.WithReader), so nothing
// that sees the socket sees ctx. Its pool hooks, which do see the
// connection, are internal; a DialHook sees a connection only when it is
// dialled, not when a call takes it from the pool, and not at all for the
// connections dialled before New; a ProcessHook sees ctx but not the
// connection. So a call cannot tell which socket to interrupt. Reusing
// goroutines from a pool instead of starting one per call, or waiting with
// context.AfterFunc instead of a select, measured no cheaper: the cost is
// the extra wake-ups of the scheduler (caller to goroutine and back), which
// any hand-off pays.

// detach calls fn(ctx) in a goroutine of its own and returns its results,
// or ctx.Err() as soon as ctx ends (see internal/detach). fn then finishes
// in the background with the same ended ctx, which stops go-redis from
// retrying or waiting for a pooled connection; a command already sent waits
// for its reply until the client's ReadTimeout, and go-redis then discards
// the connection, so the next command never reads a stale reply.
func detach[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return detachpkg.Call(ctx, fn)
}

// detachErr is [detach] for a fn that returns only an error.
func detachErr(ctx context.Context, fn func(context.Context) error) error {
	return detachpkg.Err(ctx, fn)
}
