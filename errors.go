package pgflight

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidKey is returned for a key Fetch cannot use: the empty string.
	// It is returned before any cache or lock server is touched.
	ErrInvalidKey = errors.New("invalid key")

	// ErrLockUnavailable is wrapped by the error Fetch returns when
	// Config.FailClosed is set and the Locker failed or its wait exceeded
	// Config.LockWait. Without FailClosed such a flight computes without the
	// cluster lock instead, and Stats counts it.
	ErrLockUnavailable = errors.New("lock unavailable")

	// ErrClosed is returned by Fetch and Delete after [Group.Close], and by
	// callers whose flight Close interrupted.
	ErrClosed = errors.New("group closed")

	// ErrMissing says that a key has no value. A fn that returns an error
	// wrapping ErrMissing has its result cached for Config.MissingTTL as a
	// negative entry: until it expires, callers in every process get an
	// error for which errors.Is(err, ErrMissing) holds, with the message fn
	// gave, without calling fn.
	ErrMissing = errors.New("missing")

	// ErrGoexit is returned to every caller of a flight whose fn called
	// runtime.Goexit (as t.FailNow does).
	ErrGoexit = errors.New("fn called runtime.Goexit")
)

// A PanicError is returned to every caller of a flight whose fn panicked.
// The panic is recovered where fn runs, the lock is released and nothing is
// stored, so one bad computation never crashes the process or hangs a caller.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the goroutine that panicked, as by debug.Stack.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("pgflight: fn panicked: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value if it is an error, so errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// A DecodeError reports a cache entry that could not be decoded: a damaged
// or foreign envelope, or a payload the Codec cannot decode into the
// requested type. Fetch treats such an entry as a miss, recomputes and
// overwrites it, and counts it in Stats.DecodeErrors; callers see the error
// only in logs.
type DecodeError struct {
	Key string // the cache key, namespace included
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("pgflight: decode %s: %v", quoteKey(e.Key), e.Err)
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// An EncodeError reports a value the Codec could not encode (a channel, a
// func, a cyclic structure). Fetch returns it to every caller of the flight
// and stores nothing.
type EncodeError struct {
	Key string // the cache key, namespace included
	Err error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("pgflight: encode %s: %v", quoteKey(e.Key), e.Err)
}

// Unwrap returns the underlying error.
func (e *EncodeError) Unwrap() error { return e.Err }

// missingError is what callers get from a negative entry: the message of the
// error that fn returned, which wrapped ErrMissing.
type missingError struct{ msg string }

func (e *missingError) Error() string        { return e.msg }
func (e *missingError) Is(target error) bool { return target == ErrMissing }
