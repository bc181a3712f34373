package pgflight

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// lockIDPrefix versions the key → lock id derivation. Every process sharing
// a Locker must derive the same id for the same key, across releases and
// languages, so changing it is a breaking change (key_test.go pins it).
const lockIDPrefix = "pgflight/lock/v1\x00"

// checkKey reports whether key can be used.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("pgflight: empty key: %w", ErrInvalidKey)
	}
	return nil
}

// maxNamespaceLen bounds Config.Namespace, which prefixes every cache key.
const maxNamespaceLen = 128

// checkNamespace reports whether ns can be a namespace: 1 to 128 bytes of
// printable ASCII other than space and ':'. Because a namespace never holds
// ':', the first ':' of a cache key is the one cacheKey put there, so no two
// (namespace, key) pairs share a cache key (see cacheKey).
func checkNamespace(ns string) error {
	if ns == "" || len(ns) > maxNamespaceLen {
		return fmt.Errorf("pgflight: Namespace: length %d, want 1 to %d bytes", len(ns), maxNamespaceLen)
	}
	for i := 0; i < len(ns); i++ {
		if c := ns[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("pgflight: Namespace %s: byte 0x%02x at %d, want printable ASCII other than space and ':'", quoteKey(ns), c, i)
		}
	}
	return nil
}

// cacheKey returns the key under which the Cache stores key's entry:
// namespace, ':', key. It is injective: checkNamespace keeps ':' out of
// namespaces, so the cache key splits back at its first ':' into the one
// (namespace, key) pair it came from. Namespace "site" with key "user:42"
// gives "site:user:42", and namespace "site:user" is refused, so no Group
// can read another namespace's entries. The form is part of the stored
// format (key_test.go pins it): operators find entries by it.
func cacheKey(namespace, key string) string { return namespace + ":" + key }

// LockID returns the lock id that Groups with the given namespace use for
// key, as passed to [Locker.Lock]. It is stable across processes, releases
// and platforms, so operators can find a key's lock in pg_locks (pglock
// uses it as a bigint advisory lock key).
func LockID(namespace, key string) int64 {
	if namespace == "" {
		namespace = defaultNamespace
	}
	return lockID(namespace, key)
}

// lockID returns the advisory lock id of key in namespace: the first 8 bytes
// of SHA-256 over a versioned prefix, the namespace's length, the namespace
// and the key. SHA-256 mixes every input bit into every output bit, and the
// length prefix keeps ("a:b", "c") and ("a", "b:c") apart. Two keys whose ids
// collide are merely serialised: values are always read and stored under the
// full cache key.
func lockID(namespace, key string) int64 {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte(lockIDPrefix))
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(namespace)))])
	h.Write([]byte(namespace))
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	return int64(binary.BigEndian.Uint64(h.Sum(sum[:0])))
}
