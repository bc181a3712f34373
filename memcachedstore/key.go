package memcachedstore

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// maxKeyLen is memcached's key length limit, in bytes.
const maxKeyLen = 250

// hashMarker starts every key that itemKey hashes, and only those: a key
// that starts with it is hashed even if memcached could take it as it is,
// so that no key kept as it is can equal a hashed one.
const hashMarker = "~sha256:"

// itemKey returns the memcached key for key. A key of 1 to 250 printable
// ASCII bytes (0x21 to 0x7e) that does not start with hashMarker is used as
// it is; any other key becomes hashMarker and the unpadded base64url
// encoding of its SHA-256, 51 bytes. So two keys share an item only if
// their SHA-256 sums collide. The mapping is golden-tested in key_test.go:
// changing it orphans every stored entry.
func itemKey(key string) string {
	if plainKey(key) && !strings.HasPrefix(key, hashMarker) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hashMarker + base64.RawURLEncoding.EncodeToString(sum[:])
}

// plainKey reports whether memcached's text protocol takes key as it is:
// 1 to 250 bytes, none of them a space, a control character or outside
// ASCII. memcached itself would take bytes above 0x7e, but proxies and
// tools that read keys as text might not, and hashing them costs nothing
// that matters.
func plainKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return false
		}
	}
	return true
}
