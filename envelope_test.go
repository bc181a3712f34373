package pgflight

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	e := entry{flags: flagNil, computedAt: 1, freshUntil: 1 + int64(time.Hour), took: 3 * time.Millisecond, payload: []byte("payload")}
	got, err := parseEntry(appendEntry(nil, e))
	if err != nil {
		t.Fatal(err)
	}
	if got.flags != e.flags || got.computedAt != e.computedAt || got.freshUntil != e.freshUntil || got.took != e.took || !bytes.Equal(got.payload, e.payload) {
		t.Errorf("round trip = %+v, want %+v", got, e)
	}
}

// The version 2 envelope, byte for byte: a format change must be
// deliberate (and readers of version 1 refuse it, so they recompute).
func TestTaggedEntryGolden(t *testing.T) {
	e := entry{
		computedAt: 1, freshUntil: 2, took: 3,
		tags:    appendTagSection(nil, 5, []string{"user:1", "t"}, []uint64{300, 0}),
		payload: []byte(`"v"`),
	}
	const want = "f1 02 00 0000000000000001 0000000000000002 0000000000000003" +
		" 0e 05 02 06757365723a31 ac02 0174 00 227622"
	got := fmt.Sprintf("% x", appendEntry(nil, e))
	if strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(want, " ", "") {
		t.Fatalf("envelope = %s, want %s", got, want)
	}
	back, err := parseEntry(appendEntry(nil, e))
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	var versions []uint64
	back.tags.each(func(tag []byte, v uint64) bool {
		tags = append(tags, string(tag))
		versions = append(versions, v)
		return true
	})
	if back.tags.clear() != 5 || fmt.Sprint(tags, versions) != "[user:1 t] [300 0]" || string(back.payload) != `"v"` {
		t.Errorf("parsed clear %d, tags %v %v, payload %q", back.tags.clear(), tags, versions, back.payload)
	}
	if appendTagSection(nil, 0, nil, nil) != nil {
		t.Error("no tags and Clear version 0 must be a version 1 entry")
	}
}

func TestParseEntryRejects(t *testing.T) {
	good := appendEntry(nil, entry{computedAt: 5, freshUntil: 10})
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:envHeaderSize-1]},
		{"foreign", []byte(`{"json":true}`)},
		{"version 3", append([]byte{envMagic, 3}, good[2:]...)},
		{"version 2 without its tag section", append([]byte{envMagic, 2}, good[2:]...)},
		{"fresh before computed", appendEntry(nil, entry{computedAt: 10, freshUntil: 5})},
		{"negative duration", appendEntry(nil, entry{computedAt: 1, freshUntil: 2, took: -1})},
		{"empty tag section", append(append([]byte{envMagic, 2}, good[2:]...), 2, 0, 0)},
		{"tag section overruns", append(append([]byte{envMagic, 2}, good[2:]...), 9, 1, 1)},
		{"tag overruns its section", append(append([]byte{envMagic, 2}, good[2:]...), 4, 0, 1, 5, 'x')},
		{"non-minimal uvarint", append(append([]byte{envMagic, 2}, good[2:]...), 3, 0x81, 0x00, 0)},
		{"bytes after the last tag", append(append([]byte{envMagic, 2}, good[2:]...), 4, 1, 0, 0, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseEntry(tc.b); err == nil {
				t.Errorf("parseEntry(% x) succeeded", tc.b)
			}
		})
	}
}

// FuzzParseEntry checks that no input makes the decoder panic, and that
// whatever it accepts re-encodes to the same bytes.
func FuzzParseEntry(f *testing.F) {
	f.Add(appendEntry(nil, entry{computedAt: 1, freshUntil: 2, payload: []byte(`"x"`)}))
	f.Add([]byte{envMagic, envVersion})
	f.Add(appendEntry(nil, entry{computedAt: 1, freshUntil: 2, tags: appendTagSection(nil, 1, []string{"t"}, []uint64{2}), payload: []byte(`"x"`)}))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEntry(b)
		if err != nil {
			return
		}
		if again := appendEntry(nil, e); !bytes.Equal(again, b) {
			t.Errorf("re-encoded % x, want % x", again, b)
		}
		for _, dec := range []func(Codec, entry) (any, error){
			typed[string]{}.decode, typed[[]byte]{}.decode, typed[map[string]int]{}.decode,
		} {
			dec(JSONCodec{}, e) // must not panic
		}
	})
}

// FuzzKeys checks that any key maps to its own cache key and a stable id.
func FuzzKeys(f *testing.F) {
	f.Add("ns", "key")
	f.Add("", "\x00")
	f.Add("a:b", "c")
	f.Fuzz(func(t *testing.T, ns, key string) {
		if err := checkKey(key); (err != nil) != (key == "") {
			t.Errorf("checkKey(%q) = %v", key, err)
		}
		if lockID(ns, key) != lockID(ns, key) {
			t.Error("lockID is not deterministic")
		}
		if checkNamespace(ns) == nil {
			// Injective: the first ':' splits the pair back out.
			gotNS, gotKey, _ := strings.Cut(cacheKey(ns, key), ":")
			if gotNS != ns || gotKey != key {
				t.Errorf("cacheKey(%q, %q) splits back into (%q, %q)", ns, key, gotNS, gotKey)
			}
		}
		if key != "" && lockID(ns, key) == lockID(ns+key[:1], key[1:]) {
			t.Errorf("lockID(%q, %q) collides with a shifted boundary", ns, key)
		}
	})
}

// Issue 9.12: an entry with flags this version does not know is refused,
// not served as whatever its known bits say.
func TestEntryUnknownFlags(t *testing.T) {
	for _, flags := range []byte{0xFF, 0x04, 0x80, flagNil | flagMissing} {
		b := appendEntry(nil, entry{flags: flags, payload: []byte("p")})
		if _, err := parseEntry(b); err == nil {
			t.Errorf("parseEntry with flags %#02x succeeded, want an error", flags)
		}
	}
	for _, flags := range []byte{0, flagNil, flagMissing} {
		if _, err := parseEntry(appendEntry(nil, entry{flags: flags})); err != nil {
			t.Errorf("parseEntry with flags %#02x: %v", flags, err)
		}
	}
}

// The envelope is a wire format shared by every process of every release:
// its bytes are pinned.
func TestEntryGoldenBytes(t *testing.T) {
	e := entry{flags: flagMissing, computedAt: 1, freshUntil: 2, took: 3, payload: []byte("hi")}
	want := []byte{envMagic, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 'h', 'i'}
	if got := appendEntry(nil, e); !bytes.Equal(got, want) {
		t.Errorf("appendEntry = %v, want %v", got, want)
	}
}
