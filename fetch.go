package pgflight

import (
	"context"
	"fmt"
)

// Fetch returns the value cached under key, computing it with fn on a miss.
//
// Among all processes sharing g's Locker, at most one fn runs per key at a
// time: on a miss Fetch takes the lock on a hash of key, reads the cache
// again (someone may have finished meanwhile), and only then calls fn and
// stores its result. Callers in other processes wait for that computation
// and return the stored value without computing; callers in this process
// share the flight without even touching the cache or the Locker.
//
// A fresh hit costs one cache read and no lock. An error from fn is
// returned to every caller of the flight and nothing is stored; a panic in
// fn becomes a [*PanicError]. A value the Codec cannot encode is an
// [*EncodeError], and nothing is stored.
//
// ctx bounds only this caller's wait: if it ends, Fetch returns ctx.Err()
// at once. fn runs under a context that keeps the values of the caller that
// started the flight but not its cancellation, and is cancelled only when
// every caller of the flight has gone (or the Group is closed).
//
// A hit returns what the miss returned. Values are encoded by T, the type
// argument, never by the dynamic type a T holds. When T is or holds an
// interface type (any, error, []any, a struct with an interface field), the
// callers of the miss get the value as decoded back from what was stored,
// as every later hit will: through JSON, an int held in an any comes back
// as a float64 and a struct as a map[string]any, on the miss and on every
// hit alike. A value the Codec cannot bring back (an error, a
// fmt.Stringer, through JSON) is an [*EncodeError] at the first call, and
// nothing is stored. Prefer concrete types.
//
// Callers of one key should agree on T: a caller that joins a flight
// computing another type gets an error. An empty key is [ErrInvalidKey].
func Fetch[T any](ctx context.Context, g *Group, key string, fn func(context.Context) (T, error), opts ...Option) (T, error) {
	var zero T
	if err := checkKey(key); err != nil {
		return zero, err
	}
	if fn == nil {
		return zero, fmt.Errorf("pgflight: fetch %s: nil fn", quoteKey(key))
	}
	o := g.options(opts)
	if o.err != nil {
		return zero, fmt.Errorf("pgflight: fetch %s: %w", quoteKey(key), o.err)
	}
	if o.sync {
		if err := g.sync(ctx, subject{key: key, ck: cacheKey(g.cfg.Namespace, key)}); err != nil {
			return zero, err
		}
	}
	return fetch(ctx, g, key, o, fn)
}

// valueOps is what the non-generic machinery needs to know about T.
type valueOps interface {
	compute(ctx context.Context) (any, error)
	encode(c Codec, v any) (any, []byte, byte, error)
	decode(c Codec, e entry) (any, error)
}

type typed[T any] struct {
	fn func(context.Context) (T, error)
}

func (t typed[T]) compute(ctx context.Context) (any, error) {
	v, err := t.fn(ctx)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// encode encodes v, a T or nil (a nil interface value), as encodeValue
// does.
func (typed[T]) encode(c Codec, v any) (any, []byte, byte, error) {
	t, _ := v.(T)
	out, payload, flags, err := encodeValue(c, t)
	return out, payload, flags, err
}

func (typed[T]) decode(c Codec, e entry) (any, error) {
	v, err := decodeValue[T](c, e)
	if err != nil {
		return nil, err
	}
	return v, nil
}
