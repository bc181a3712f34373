package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

func testMiss(t *testing.T, c pgflight.Cache, prefix string) {
	val, ok, err := c.Get(t.Context(), prefix+"never-set")
	if val != nil || ok || err != nil {
		t.Errorf("Get(never set) = %q, %v, %v; want nil, false, nil", val, ok, err)
	}
}

func testSetGet(t *testing.T, c pgflight.Cache, prefix string) {
	set(t, c, prefix+"k", []byte("hello"), ttl)
	want(t, c, prefix+"k", []byte("hello"))
}

func testOverwrite(t *testing.T, c pgflight.Cache, prefix string) {
	key := prefix + "k"
	for _, v := range []string{"a first, longer value", "short", "", "a third value, the longest of them all"} {
		set(t, c, key, []byte(v), ttl)
		want(t, c, key, []byte(v))
	}
}

// testEmptyValue checks that an empty value is a value: Fetch stores the
// encoding of zero values, and a miss would make it recompute them forever.
func testEmptyValue(t *testing.T, c pgflight.Cache, prefix string) {
	for name, val := range map[string][]byte{"empty": {}, "nil": nil} {
		key := prefix + name
		set(t, c, key, val, ttl)
		got, ok := get(t, c, key)
		if !ok || len(got) != 0 {
			t.Errorf("Get(%s value) = %q, %v; want an empty value, true", name, got, ok)
		}
	}
}

func testBinaryValue(t *testing.T, c pgflight.Cache, prefix string) {
	val := make([]byte, 512)
	for i := range 256 {
		val[i] = byte(i)
		val[511-i] = byte(i)
	}
	set(t, c, prefix+"all-bytes", val, ttl)
	want(t, c, prefix+"all-bytes", val)
	for _, v := range []string{"\x00", "\r\n", "$-1\r\n", "\xff\xfe\xfd"} {
		key := fmt.Sprintf("%s%x", prefix, v)
		set(t, c, key, []byte(v), ttl)
		want(t, c, key, []byte(v))
	}
}

// testKeys sets one value per key, then reads them all back: keys that a
// store escapes, hashes or truncates badly would share a value.
func testKeys(t *testing.T, c pgflight.Cache, prefix string) {
	long := strings.Repeat("k", 10<<10)
	keys := []string{
		"", "a", "A", "a ", " a", "a b", "a\tb", "a\n", "a\r\n", "\n",
		"a\x00", "a\x00b", "\x00", "\x00\x00", "a:b", "a/b", "*", "?", "[a]", "{a}",
		"ключ", "鍵🔑", "e\u0301", "\u00e9", "\xff\xfe", "%s", "a%20b",
		long, long + "x", "x" + long, long[:250], long[:251],
	}
	for i, k := range keys {
		set(t, c, prefix+k, fmt.Appendf(nil, "value %d", i), ttl)
	}
	for i, k := range keys {
		want(t, c, prefix+k, fmt.Appendf(nil, "value %d", i))
	}
}

func testLargeValue(t *testing.T, c pgflight.Cache, prefix string) {
	val := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range val {
		val[i] = byte(r.Uint32())
	}
	set(t, c, prefix+"large", val, ttl)
	want(t, c, prefix+"large", val)
}

// testCallerOwnsValue checks that the slice Get returns is the caller's:
// changing it changes nothing in the store.
func testCallerOwnsValue(t *testing.T, c pgflight.Cache, prefix string) {
	key := prefix + "k"
	set(t, c, key, []byte("original"), time.Hour)
	got, ok := get(t, c, key)
	if !ok {
		t.Fatal("Get: miss, want a value")
	}
	for i := range got {
		got[i] = 'x'
	}
	want(t, c, key, []byte("original"))
}
