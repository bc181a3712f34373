package pgstore

import "crypto/sha256"

// maxRawKey is the longest key stored as it is. A longer key is stored as
// its first maxRawKey bytes followed by the SHA-256 of the whole key,
// maxRawKey+32 bytes: PostgreSQL's B-tree refuses entries over about 2.7
// KB, and a key longer than that would otherwise fail to insert. The two
// forms never meet, since a raw key is at most maxRawKey bytes and a
// digested one always longer, and the readable prefix keeps long keys
// recognisable in the table.
const maxRawKey = 1024

// storedKey returns the bytes under which key is stored.
func storedKey(key string) []byte {
	if len(key) <= maxRawKey {
		return []byte(key)
	}
	sum := sha256.Sum256([]byte(key))
	b := make([]byte, 0, maxRawKey+sha256.Size)
	b = append(b, key[:maxRawKey]...)
	return append(b, sum[:]...)
}
