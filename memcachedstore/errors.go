package memcachedstore

import (
	"errors"
	"fmt"
)

// itemOverhead is what an item costs memcached besides its key and value,
// in bytes, as measured on 64-bit memcached 1.6 with CAS (its default): a
// 48-byte header, 8 bytes of CAS, the key's NUL and the value's CRLF. An
// item fits if len(key) + len(value) + itemOverhead is at most the
// server's -I.
const itemOverhead = 59

// ErrTooLarge is matched, with [errors.Is], by every [*TooLargeError].
var ErrTooLarge = errors.New("value too large for memcached")

// A TooLargeError reports a value that Set or SetMany did not store
// because it does not fit in a memcached item. Either the Store refused it
// before sending anything, from the item size limit of [WithMaxItemSize],
// and then the previous value under its key, if any, is still there; or
// the server refused it, having a smaller limit (its -I option) than the
// Store was told, and then memcached has deleted the previous value. Never
// is part of a value stored.
type TooLargeError struct {
	Size  int   // the value's length in bytes
	Limit int   // the Store's item size limit in bytes ([WithMaxItemSize])
	Max   int   // the longest value that fits under Limit with this key
	Err   error // the server's answer, or nil if the Store refused the value
}

// Error says how large the value is and what the limit is, for example
// "value of 2000000 bytes exceeds the item size limit of 1048576 bytes
// (memcached -I; at most 1048467 bytes of value with this key)".
func (e *TooLargeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("value of %d bytes refused by memcached: object too large for cache (the Store assumed an item size limit of %d bytes; the server's -I is smaller)", e.Size, e.Limit)
	}
	return fmt.Sprintf("value of %d bytes exceeds the item size limit of %d bytes (memcached -I; at most %d bytes of value with this key)", e.Size, e.Limit, e.Max)
}

// Unwrap returns the server's answer, if the server refused the value.
func (e *TooLargeError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrTooLarge].
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }
