package pgstore

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestStoredKey pins the stored form of keys, which every process of a
// fleet must compute alike: a key of up to 1,024 bytes as it is, a longer
// one as its first 1,024 bytes and the SHA-256 of the whole key.
func TestStoredKey(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		want      string // the bytes after the key's first 1,024, in hex
	}{
		{"short", "user:42", ""},
		{"1024", strings.Repeat("k", 1024), ""},
		{"1025", strings.Repeat("k", 1025), "011cc8dcade24f43d2d7f95605d8481da1d0b86475def49be02bfc20cee86e65"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := storedKey(tc.key)
			if tc.want == "" {
				if string(got) != tc.key {
					t.Errorf("storedKey(%d bytes) = %d bytes, want the key itself", len(tc.key), len(got))
				}
				return
			}
			if len(got) != 1056 || string(got[:1024]) != tc.key[:1024] {
				t.Fatalf("storedKey(%d bytes) = %d bytes, want the first 1,024 and 32 more", len(tc.key), len(got))
			}
			if h := hex.EncodeToString(got[1024:]); h != tc.want {
				t.Errorf("storedKey digest = %s, want %s", h, tc.want)
			}
		})
	}
}
