package faults_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/redisstore"
)

// node can point to itself.
type node struct {
	Name string
	Next *node
}

// badMarshaler fails to encode itself.
type badMarshaler struct{}

func (badMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("cannot marshal") }

// panicMarshaler panics while encoding itself.
type panicMarshaler struct{}

func (panicMarshaler) MarshalJSON() ([]byte, error) { panic("marshal panics") }

// Scenario 10: hostile input through a real Redis. Values the codec cannot
// encode give an *EncodeError (a panicking codec a *PanicError) and store
// nothing; a 64 MiB value is stored and read back intact, or, when Redis
// refuses it, returned intact and not stored, never truncated; keys of any
// bytes and length stay apart. (The fuzz targets for entry decoding and
// keys run in CI: see .ci/run.)
func TestHostileInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rd := startRedis(t)
	rdb := newRedis(t, rd.URL())
	ns := namespace(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: redisstore.New(rdb), Logger: discard})
	stored := func(key string) bool { return rdb.Exists(ctx, ns+":"+key).Val() == 1 }

	t.Run("unencodable", func(t *testing.T) {
		cyclic := &node{Name: "loop"}
		cyclic.Next = cyclic
		selfMap := map[string]any{}
		selfMap["self"] = selfMap
		cases := []struct {
			name  string
			fetch func(key string) error
		}{
			{"channel", fetchErr(g, func() chan int { return make(chan int) })},
			{"func", fetchErr(g, func() func() { return func() {} })},
			{"cyclic pointers", fetchErr(g, func() *node { return cyclic })},
			{"cyclic map", fetchErr(g, func() map[string]any { return selfMap })},
			{"NaN", fetchErr(g, func() float64 { return math.NaN() })},
			{"infinity", fetchErr(g, func() []float64 { return []float64{1, math.Inf(1)} })},
			{"failing Marshaler", fetchErr(g, func() badMarshaler { return badMarshaler{} })},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				key := "unencodable-" + tc.name
				before := g.Stats().EncodeErrors
				err := tc.fetch(key)
				var ee *pgflight.EncodeError
				if !errors.As(err, &ee) {
					t.Fatalf("Fetch: %v, want an *EncodeError", err)
				}
				if ee.Key != ns+":"+key {
					t.Errorf("EncodeError.Key = %q, want %q", ee.Key, ns+":"+key)
				}
				t.Logf("%v", err)
				if stored(key) {
					t.Error("something was stored")
				}
				if after := g.Stats().EncodeErrors; after != before+1 {
					t.Errorf("encode errors grew by %d, want 1", after-before)
				}
				// The key is not poisoned: an encodable value works.
				if v, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) { return value(key), nil }); err != nil || v != value(key) {
					t.Errorf("Fetch of an encodable value afterwards = %q, %v", v, err)
				}
			})
		}
		t.Run("panicking Marshaler", func(t *testing.T) {
			err := fetchErr(g, func() panicMarshaler { return panicMarshaler{} })("unencodable-panic")
			var pe *pgflight.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("Fetch: %v, want a *PanicError", err)
			}
			if stored("unencodable-panic") {
				t.Error("something was stored")
			}
		})
	})

	t.Run("64 MiB", func(t *testing.T) {
		big := make([]byte, 64<<20)
		rand.NewChaCha8([32]byte{1}).Read(big)
		fetch := func(key string) ([]byte, int) {
			t.Helper()
			computed := 0
			v, err := pgflight.Fetch(ctx, g, key, func(context.Context) ([]byte, error) {
				computed++
				return bytes.Clone(big), nil
			})
			if err != nil {
				t.Fatalf("Fetch(%q): %v", key, err)
			}
			return v, computed
		}
		intact := func(what string, v []byte) {
			t.Helper()
			if len(v) != len(big) || !bytes.Equal(v, big) {
				t.Fatalf("%s: %d bytes, not the %d computed: truncated or damaged", what, len(v), len(big))
			}
		}

		errs := g.Stats().CacheErrors
		v, _ := fetch("big")
		intact("first Fetch", v)
		if g.Stats().CacheErrors == errs {
			if n := rdb.StrLen(ctx, ns+":big").Val(); n != int64(len(big))+27 {
				t.Errorf("Redis holds %d bytes, want the value and its 27-byte header, %d", n, len(big)+27)
			}
		}
		errs = g.Stats().CacheErrors
		v, computed := fetch("big")
		intact("second Fetch", v)
		if computed != 0 && g.Stats().CacheErrors == errs {
			t.Error("the second Fetch computed again although reading the cache reported no error")
		}
		t.Logf("64 MiB stored and read back; second Fetch computed %d times", computed)

		// Redis refuses values over proto-max-bulk-len: the value is still
		// returned, intact, counted as a cache error, and nothing is stored.
		limit := rdb.ConfigGet(ctx, "proto-max-bulk-len").Val()["proto-max-bulk-len"]
		if err := rdb.ConfigSet(ctx, "proto-max-bulk-len", "32mb").Err(); err != nil {
			t.Fatal(err)
		}
		defer rdb.ConfigSet(ctx, "proto-max-bulk-len", limit)
		errs = g.Stats().CacheErrors
		v, _ = fetch("refused")
		intact("Fetch of a value Redis refuses", v)
		if g.Stats().CacheErrors == errs {
			t.Error("the refused write was not counted as a cache error")
		}
		if stored("refused") {
			t.Errorf("Redis holds %d bytes of a value it refused", rdb.StrLen(ctx, ns+":refused").Val())
		}
		v, computed = fetch("refused")
		intact("second Fetch of a value Redis refuses", v)
		if computed != 1 {
			t.Errorf("second Fetch of the refused value computed %d times, want 1", computed)
		}
	})

	t.Run("keys", func(t *testing.T) {
		keys := []string{
			"\x00", "\x00\x00", "a b", "a:b", ":", "\r\n*1\r\n$4\r\nPING\r\n", "\xff\xfe\xfd",
			"é", "e\u0301", strings.Repeat("k", 1<<20), strings.Repeat("k", 1<<20) + "x",
		}
		for _, key := range keys {
			if v, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) { return value(key), nil }); err != nil || v != value(key) {
				t.Errorf("Fetch(%.20q) = %.40q, %v", key, v, err)
			}
		}
		for _, key := range keys {
			v, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) { return "computed again", nil })
			if err != nil || v != value(key) {
				t.Errorf("second Fetch(%.20q) = %.40q, %v; want the stored value", key, v, err)
			}
		}
		if _, err := pgflight.Fetch(ctx, g, "", func(context.Context) (string, error) { return "", nil }); !errors.Is(err, pgflight.ErrInvalidKey) {
			t.Errorf("empty key: %v, want ErrInvalidKey", err)
		}
	})
}

// fetchErr returns a function that fetches key with an fn returning mk()
// and reports Fetch's error.
func fetchErr[T any](g *pgflight.Group, mk func() T) func(key string) error {
	return func(key string) error {
		_, err := pgflight.Fetch(context.Background(), g, key, func(context.Context) (T, error) { return mk(), nil })
		return err
	}
}
