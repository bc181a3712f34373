package memcachedstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/memcachedstore"
	"github.com/pgflight/pgflight/storetest"
)

// memcachedstore does not import pgflight, so it asserts its contracts here.
var (
	_ pgflight.Cache      = (*memcachedstore.Store)(nil)
	_ pgflight.Deleter    = (*memcachedstore.Store)(nil)
	_ pgflight.BatchCache = (*memcachedstore.Store)(nil)
)

// newStore returns a Store on the shared server, told the server's item
// size limit.
func newStore(tb testing.TB) (*memcachedstore.Store, *memcache.Client) {
	tb.Helper()
	mc := newClient(tb)
	return memcachedstore.New(mc, memcachedstore.WithMaxItemSize(itemSizeMax(tb, serverAddr(tb)))), mc
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		s, _ := newStore(t)
		return s
	})
}

// TestGetManyRepeatedKey checks that a key given twice to GetMany comes
// back twice, in two slices of the caller's.
func TestGetManyRepeatedKey(t *testing.T) {
	s, _ := newStore(t)
	key := t.Name() + ":k"
	if err := s.Set(t.Context(), key, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	vals, err := s.GetMany(t.Context(), []string{key, t.Name() + ":missing", key})
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 3 || string(vals[0]) != "v" || vals[1] != nil || string(vals[2]) != "v" {
		t.Fatalf("GetMany(k, missing, k) = %q, want [v <nil> v]", vals)
	}
	vals[0][0] = 'x'
	if string(vals[2]) != "v" {
		t.Errorf("after changing GetMany's first value, its third = %q, want %q (shared slices)", vals[2], "v")
	}
}

// TestGetManyManyKeys sends a multi-get of 2,000 keys, some 100 KB of
// command line, a third of them missing, to check that memcached takes it
// whole and GetMany puts every value in its place.
func TestGetManyManyKeys(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	keys := make([]string, 2000)
	var setKeys []string
	var setVals [][]byte
	var setTTLs []time.Duration
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%s:%d", t.Name(), strings.Repeat("k", i%30), i)
		if i%3 != 0 {
			setKeys, setVals, setTTLs = append(setKeys, keys[i]), append(setVals, []byte(keys[i])), append(setTTLs, time.Minute)
		}
	}
	if err := s.SetMany(ctx, setKeys, setVals, setTTLs); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("GetMany returned %d values for %d keys", len(got), len(keys))
	}
	for i, k := range keys {
		switch {
		case i%3 == 0 && got[i] != nil:
			t.Fatalf("GetMany[%d] = %q, want nil (a miss)", i, got[i])
		case i%3 != 0 && string(got[i]) != k:
			t.Fatalf("GetMany[%d] = %q, want %q", i, got[i], k)
		}
	}
}

// TestDeadServer stops a server: every call must fail with an error that
// names the operation, and Get must not report a miss.
func TestDeadServer(t *testing.T) {
	srv, err := testserver.StartMemcached()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mc := memcache.New(srv.Addr())
	defer mc.Close()
	s := memcachedstore.New(mc)
	ctx := t.Context()
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	val, ok, err := s.Get(ctx, "k")
	if err == nil || ok || val != nil {
		t.Errorf("Get = %q, %v, %v; want nil, false, an error", val, ok, err)
	} else if !strings.HasPrefix(err.Error(), "memcachedstore: get: ") {
		t.Errorf("Get error = %q, want it to start with %q", err, "memcachedstore: get: ")
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Error("Set = nil, want an error")
	} else if !strings.HasPrefix(err.Error(), "memcachedstore: set: ") {
		t.Errorf("Set error = %q, want it to start with %q", err, "memcachedstore: set: ")
	}
	if err := s.Delete(ctx, "k"); err == nil {
		t.Error("Delete = nil, want an error")
	} else if !strings.HasPrefix(err.Error(), "memcachedstore: delete: ") {
		t.Errorf("Delete error = %q, want it to start with %q", err, "memcachedstore: delete: ")
	}
	if vals, err := s.GetMany(ctx, []string{"k"}); err == nil {
		t.Errorf("GetMany = %q, nil; want an error", vals)
	} else if !strings.HasPrefix(err.Error(), "memcachedstore: get many: ") {
		t.Errorf("GetMany error = %q, want it to start with %q", err, "memcachedstore: get many: ")
	}
	if err := s.SetMany(ctx, []string{"k"}, [][]byte{[]byte("v")}, []time.Duration{time.Minute}); err == nil {
		t.Error("SetMany = nil, want an error")
	} else if !strings.HasPrefix(err.Error(), "memcachedstore: set many: ") {
		t.Errorf("SetMany error = %q, want it to start with %q", err, "memcachedstore: set many: ")
	}
	if errors.Is(err, memcachedstore.ErrTooLarge) {
		t.Errorf("SetMany error on a dead server = %q, matches ErrTooLarge", err)
	}
}
