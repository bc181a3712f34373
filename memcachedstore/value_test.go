package memcachedstore_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight/memcachedstore"
)

// itemOverhead is what memcached 1.6 adds to an item's key and value, as
// measured by TestTooLarge's boundary.
const itemOverhead = 59

// hashedKeyLen is the length of a key memcachedstore hashes.
const hashedKeyLen = 51

// TestTooLarge stores the longest value that fits under the server's item
// size limit, and one byte more: the Store refuses that before sending it,
// with a TooLargeError that names the size and the limit, and the previous
// value stays. Told a larger limit than the server's, the Store sends it,
// the server refuses it, and Set returns the same kind of error; the key
// then holds the previous value or nothing, never part of the new one, and
// the Store goes on working.
func TestTooLarge(t *testing.T) {
	s, mc := newStore(t)
	ctx := t.Context()
	limit := itemSizeMax(t, serverAddr(t))
	for _, tc := range []struct{ name, key string }{
		{"plain key", t.Name() + ":k"},
		{"hashed key", t.Name() + ": k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			klen := len(tc.key)
			if strings.Contains(tc.key, " ") {
				klen = hashedKeyLen
			}
			fit := limit - klen - itemOverhead
			old := []byte("old")
			set := func(s *memcachedstore.Store, val []byte) error { return s.Set(ctx, tc.key, val, time.Minute) }
			if err := set(s, old); err != nil {
				t.Fatal(err)
			}

			big := bytes.Repeat([]byte{'b'}, fit)
			if err := set(s, big); err != nil {
				t.Fatalf("Set of %d bytes, the most that fits with a %d-byte key under -I %d: %v", fit, klen, limit, err)
			}
			if got, ok, err := s.Get(ctx, tc.key); !bytes.Equal(got, big) || !ok || err != nil {
				t.Fatalf("Get after Set of %d bytes = %d bytes, %v, %v; want the value", fit, len(got), ok, err)
			}

			if err := set(s, old); err != nil {
				t.Fatal(err)
			}
			err := set(s, append(big, 'b'))
			var tl *memcachedstore.TooLargeError
			if !errors.Is(err, memcachedstore.ErrTooLarge) || !errors.As(err, &tl) {
				t.Fatalf("Set of %d bytes = %v, want a *TooLargeError matching ErrTooLarge", fit+1, err)
			}
			if tl.Size != fit+1 || tl.Limit != limit || tl.Max != fit || tl.Err != nil {
				t.Errorf("TooLargeError = %+v, want Size %d, Limit %d, Max %d, Err nil (refused before sending)", *tl, fit+1, limit, fit)
			}
			for _, want := range []string{"memcachedstore: set: ", strconv.Itoa(fit + 1), strconv.Itoa(limit)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Set error %q does not contain %q", err, want)
				}
			}
			if got, ok, err := s.Get(ctx, tc.key); !bytes.Equal(got, old) || !ok || err != nil {
				t.Errorf("Get after a refused Set = %d bytes, %v, %v; want the previous value %q", len(got), ok, err, old)
			}

			// A Store that believes the limit is 4 times larger sends the
			// value, and the server refuses it.
			lax := memcachedstore.New(mc, memcachedstore.WithMaxItemSize(4*limit))
			err = set(lax, append(big, 'b'))
			if !errors.Is(err, memcachedstore.ErrTooLarge) || !errors.As(err, &tl) {
				t.Fatalf("Set of %d bytes refused by the server = %v, want a *TooLargeError matching ErrTooLarge", fit+1, err)
			}
			if tl.Size != fit+1 || tl.Err == nil || !strings.Contains(tl.Err.Error(), "object too large for cache") {
				t.Errorf("TooLargeError = %+v, want Size %d and the server's answer in Err", *tl, fit+1)
			}
			t.Logf("server refusal: %v", err)
			got, ok, err := lax.Get(ctx, tc.key)
			if err != nil || ok && !bytes.Equal(got, old) {
				t.Errorf("Get after the server refused a Set = %d bytes, %v, %v; want the previous value or a miss", len(got), ok, err)
			}
			t.Logf("after the server's refusal, Get = %q, %v", got, ok)
			if err := set(lax, []byte("new")); err != nil {
				t.Fatalf("Set after the server refused one: %v", err)
			}
			if got, ok, err := lax.Get(ctx, tc.key); string(got) != "new" || !ok || err != nil {
				t.Errorf("Get after the server refused a Set, and another succeeded = %q, %v, %v; want %q", got, ok, err, "new")
			}
		})
	}
}

// TestSetManyTooLarge gives SetMany one value too large among others: the
// others are stored, the large one's key keeps its value, and the error
// says which.
func TestSetManyTooLarge(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	limit := itemSizeMax(t, serverAddr(t))
	a, big, b := t.Name()+":a", t.Name()+":big", t.Name()+":b"
	if err := s.Set(ctx, big, []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	run := []byte(time.Now().String())
	err := s.SetMany(ctx, []string{a, big, b}, [][]byte{run, make([]byte, limit), run}, []time.Duration{time.Minute, time.Minute, time.Minute})
	var tl *memcachedstore.TooLargeError
	if !errors.Is(err, memcachedstore.ErrTooLarge) || !errors.As(err, &tl) || tl.Size != limit {
		t.Fatalf("SetMany with a value of %d bytes = %v, want a *TooLargeError for it", limit, err)
	}
	if !strings.Contains(err.Error(), "memcachedstore: set many: key 1: ") {
		t.Errorf("SetMany error %q does not name key 1", err)
	}
	vals, err := s.GetMany(ctx, []string{a, big, b})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vals[0], run) || string(vals[1]) != "old" || !bytes.Equal(vals[2], run) {
		t.Errorf("GetMany after SetMany = %.40q, want [%q %q %q]", vals, run, "old", run)
	}
}
