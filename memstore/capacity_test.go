package memstore

import (
	"fmt"
	"testing"
	"time"
)

// TestCapacity fills a 1 MiB store with 4 MiB of entries and checks that what
// remains fits, counting keys and values.
func TestCapacity(t *testing.T) {
	const maxBytes, valSize, n = 1 << 20, 16 << 10, 256
	s := New(WithMaxBytes(maxBytes))
	defer s.Close()
	ctx := t.Context()
	val := make([]byte, valSize)
	for i := range n {
		if err := s.Set(ctx, fmt.Sprint("k", i), val, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	s.cache.CleanUp() // run otter's pending maintenance, evictions included, now

	if got := s.cache.WeightedSize(); got > maxBytes {
		t.Errorf("WeightedSize = %d, want ≤ %d", got, maxBytes)
	}
	held, hits := 0, 0
	for i := range n {
		key := fmt.Sprint("k", i)
		if v, ok, _ := s.Get(ctx, key); ok {
			held += len(key) + len(v)
			hits++
		}
	}
	if held > maxBytes {
		t.Errorf("entries held = %d bytes, want ≤ %d", held, maxBytes)
	}
	// W-TinyLFU may keep somewhat less than the maximum, never nothing.
	if min := maxBytes / valSize / 2; hits < min {
		t.Errorf("entries held = %d, want at least %d", hits, min)
	}
}

// TestEntryOverCapacity checks that a single entry larger than the capacity
// does not stay, and does not push out the entries that fit.
func TestEntryOverCapacity(t *testing.T) {
	s := New(WithMaxBytes(1 << 10))
	defer s.Close()
	ctx := t.Context()
	if err := s.Set(ctx, "small", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "huge", make([]byte, 2<<10), time.Hour); err != nil {
		t.Fatal(err)
	}
	s.cache.CleanUp()
	if _, ok, _ := s.Get(ctx, "huge"); ok {
		t.Error("Get(huge) is a hit, want the 2 KiB entry evicted from a 1 KiB store")
	}
	if _, ok, _ := s.Get(ctx, "small"); !ok {
		t.Error("Get(small) is a miss, want it kept")
	}
}

func TestWeigh(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		valLen int
		want   uint32
	}{
		{"empty", "", 0, 1},
		{"key only", "abc", 0, 3},
		{"key and value", "abc", 10, 13},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := weigh(tc.key, entry{val: make([]byte, tc.valLen)}); got != tc.want {
				t.Errorf("weigh = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestWithMaxBytes(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want uint64
	}{
		{"default", nil, DefaultMaxBytes},
		{"set", []Option{WithMaxBytes(1000)}, 1000},
		{"zero means default", []Option{WithMaxBytes(0)}, DefaultMaxBytes},
		{"negative means default", []Option{WithMaxBytes(-1)}, DefaultMaxBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.opts...)
			defer s.Close()
			if got := s.cache.GetMaximum(); got != tc.want {
				t.Errorf("maximum = %d, want %d", got, tc.want)
			}
		})
	}
}
