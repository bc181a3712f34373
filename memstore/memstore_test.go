package memstore_test

import (
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/storetest"
)

// memstore does not import pgflight, so it asserts its contracts here.
var (
	_ pgflight.Cache   = (*memstore.Store)(nil)
	_ pgflight.Deleter = (*memstore.Store)(nil)
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestCloseTwice(t *testing.T) {
	s := memstore.New()
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("Close #%d = %v, want nil", i+1, err)
		}
	}
	if err := s.Set(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set after Close: %v", err)
	}
	if got, ok, err := s.Get(t.Context(), "k"); string(got) != "v" || !ok || err != nil {
		t.Errorf("Get after Close = %q, %v, %v; want %q, true, nil", got, ok, err, "v")
	}
}

// TestSetCopies checks that Set keeps a copy: the caller may reuse its
// buffer. (The Cache contract lets a store keep val; memstore does not rely
// on that, so that other callers than pgflight are safe too.)
func TestSetCopies(t *testing.T) {
	s := memstore.New()
	defer s.Close()
	buf := []byte("original")
	if err := s.Set(t.Context(), "k", buf, time.Minute); err != nil {
		t.Fatal(err)
	}
	copy(buf, "xxxxxxxx")
	if got, _, _ := s.Get(t.Context(), "k"); string(got) != "original" {
		t.Errorf("Get after the caller changed its buffer = %q, want %q", got, "original")
	}
}
