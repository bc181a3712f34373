package memcachedstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// keyTests are the golden cases of the key mapping (see the package doc):
// each pgflight key, and the memcached key it must be stored under. The
// hashes were computed apart from the code, with
//
//	printf KEY | sha256sum | xxd -r -p | base64 | tr '+/' '-_' | tr -d =
//
// Changing one orphans every entry stored under such a key.
var keyTests = []struct {
	name, key, want string
}{
	{"plain", "ns:user:42", "ns:user:42"},
	{"punctuation", "ns:a/b?c=d&e[0]{}|~!\"'`", "ns:a/b?c=d&e[0]{}|~!\"'`"},
	{"250 bytes", "ns:" + strings.Repeat("k", 247), "ns:" + strings.Repeat("k", 247)},
	{"251 bytes", "ns:" + strings.Repeat("k", 248), "~sha256:oFlP_uxqDh2dUVEJjANitaS-fe-zfWK0WM11Jgd9Tk4"},
	{"space", "ns:user 42", "~sha256:cCaJac7vJ1GPVowK12Zs3kK7A1rBIfLKGVWDFSp9t4c"},
	{"newline", "ns:user\n42", "~sha256:ioP-NVJmcA6ixQPnJa_lW9nBJGp26Cpc0xwzYG98R50"},
	{"NUL", "ns:user\x0042", "~sha256:9UYFXU5m2g1Iogz0nYdkEWJzkmVyARR15CLQ65sN1cw"},
	{"tab", "ns:user\t42", "~sha256:2QTpda7ueHJPJeRcQ64rSBg1E4h8KLd6DFB4Xa2xC9I"},
	{"DEL", "ns:user\x7f42", "~sha256:TZfI04m8bfcAGMaDT8DtFulY_afum2EIY-ZFWQcrV7o"},
	{"not UTF-8", "ns:\xff\xfe", "~sha256:vc1hr4WK4qt7zVuLQK04H2MQN21dw5NTY36ITy3FzKw"},
	{"UTF-8 beyond ASCII", "ns:caf\u00e9", "~sha256:2mhqrQ9TX85lIiE1FA5Nl-9MhZBZ6fZYgwhue3-uAHU"},
	{"empty", "", "~sha256:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
	{"marker alone", "~sha256:", "~sha256:EBsu5M9K8W41q9Odz-PsMy6zDBBKe9mjb1bsuILLm7M"},
	// The memcached key of "ns:user 42", as a pgflight key of its own: it
	// must not reach the item of "ns:user 42".
	{"looks mapped", "~sha256:cCaJac7vJ1GPVowK12Zs3kK7A1rBIfLKGVWDFSp9t4c", "~sha256:LGgRP0uR7KYWI4q-B8EzZdydMQO_Oyx6wuUVS7R17tA"},
	{"marker's prefix", "~sha256", "~sha256"},
}

// TestKeys stores a value under each golden key through the Store, then
// reads each back with gomemcache alone under the memcached key it must
// have: the mapping is the golden one, every mapped key is one memcached
// takes, and no two keys share an item.
func TestKeys(t *testing.T) {
	s, mc := newStore(t)
	ctx := t.Context()
	seen := make(map[string]string)
	for _, tc := range keyTests {
		if other, ok := seen[tc.want]; ok {
			t.Fatalf("cases %q and %q map to the same key %q", other, tc.name, tc.want)
		}
		seen[tc.want] = tc.name
	}
	// Each run stores its own values, so a value left by an earlier run
	// cannot pass for this one's.
	run := time.Now().UnixNano()
	val := func(name string) string { return fmt.Sprintf("%s %d", name, run) }
	for _, tc := range keyTests {
		if err := s.Set(ctx, tc.key, []byte(val(tc.name)), time.Minute); err != nil {
			t.Fatalf("%s: Set: %v", tc.name, err)
		}
	}
	for _, tc := range keyTests {
		t.Run(tc.name, func(t *testing.T) {
			it, err := mc.Get(tc.want)
			if err != nil {
				t.Fatalf("gomemcache Get(%q) = %v, want the value the Store set under %q", tc.want, err, tc.key)
			}
			if got := string(it.Value); got != val(tc.name) {
				t.Errorf("gomemcache Get(%q) = %q, want %q", tc.want, got, val(tc.name))
			}
			got, ok, err := s.Get(ctx, tc.key)
			if string(got) != val(tc.name) || !ok || err != nil {
				t.Errorf("Store Get(%q) = %q, %v, %v; want %q, true, nil", tc.key, got, ok, err, val(tc.name))
			}
			if err := s.Delete(ctx, tc.key); err != nil {
				t.Fatal(err)
			}
			if _, err := mc.Get(tc.want); err != memcache.ErrCacheMiss {
				t.Errorf("gomemcache Get(%q) after Delete(%q) = %v, want a miss", tc.want, tc.key, err)
			}
		})
	}
}

// TestKeysGetMany checks that GetMany maps keys as Get does.
func TestKeysGetMany(t *testing.T) {
	s, mc := newStore(t)
	keys := make([]string, len(keyTests))
	for i, tc := range keyTests {
		keys[i] = tc.key
		if err := mc.Set(&memcache.Item{Key: tc.want, Value: []byte(tc.name), Expiration: 60}); err != nil {
			t.Fatal(err)
		}
	}
	vals, err := s.GetMany(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range keyTests {
		if string(vals[i]) != tc.name {
			t.Errorf("GetMany[%q] = %q, want %q, stored under %q", tc.key, vals[i], tc.name, tc.want)
		}
	}
}
