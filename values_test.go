package pgflight_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// deadAddr returns a loopback address where nothing listens.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func deadPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+deadAddr(tb)+"/postgres?connect_timeout=2")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func deadRedis(tb testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: deadAddr(tb), MaxRetries: -1, DialTimeout: 2 * time.Second})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

type report struct {
	Name  string
	Total int
	Tags  []string
}

// Behaviour 14: values round-trip through the codec; zero values are hits.
func TestValues(t *testing.T) {
	g := newGroup(t, fleetConfig(t))
	ctx := context.Background()
	fetchTwice := func(t *testing.T, key string, want any, fetch func(calls *int) (any, error)) {
		t.Helper()
		calls := 0
		for range 2 {
			got, err := fetch(&calls)
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, want) {
				t.Errorf("%s = %#v, want %#v", key, got, want)
			}
		}
		if calls != 1 {
			t.Errorf("%s: computations = %d, want 1 (a zero value is a hit)", key, calls)
		}
	}
	fetchTwice(t, "struct", report{"q3", 7, []string{"a"}}, func(c *int) (any, error) {
		return pgflight.Fetch(ctx, g, "struct", func(context.Context) (report, error) { *c++; return report{"q3", 7, []string{"a"}}, nil })
	})
	fetchTwice(t, "zero int", 0, func(c *int) (any, error) {
		return pgflight.Fetch(ctx, g, "zero int", func(context.Context) (int, error) { *c++; return 0, nil })
	})
	fetchTwice(t, "empty string", "", func(c *int) (any, error) {
		return pgflight.Fetch(ctx, g, "empty string", func(context.Context) (string, error) { *c++; return "", nil })
	})
	fetchTwice(t, "nil slice", []int(nil), func(c *int) (any, error) {
		return pgflight.Fetch(ctx, g, "nil slice", func(context.Context) ([]int, error) { *c++; return nil, nil })
	})
	fetchTwice(t, "nil bytes", []byte(nil), func(c *int) (any, error) {
		return pgflight.Fetch(ctx, g, "nil bytes", func(context.Context) ([]byte, error) { *c++; return nil, nil })
	})
	fetchTwice(t, "pointer", &report{Name: "p"}, func(c *int) (any, error) {
		return pgflight.Fetch(ctx, g, "pointer", func(context.Context) (*report, error) { *c++; return &report{Name: "p"}, nil })
	})
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case report:
		y := b.(report)
		return x.Name == y.Name && x.Total == y.Total && len(x.Tags) == len(y.Tags)
	case *report:
		return x.Name == b.(*report).Name
	case []int:
		return (x == nil) == (b.([]int) == nil)
	case []byte:
		return bytes.Equal(x, b.([]byte)) && (x == nil) == (b.([]byte) == nil)
	}
	return a == b
}

// Behaviour 14: []byte and string are stored as they are, in the envelope.
func TestRawValuesStoredAsIs(t *testing.T) {
	cache := memstore.New()
	ns := namespace(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache})
	raw := []byte{0, 1, 2, 0xff, '"'}
	if _, err := pgflight.Fetch(context.Background(), g, "b", func(context.Context) ([]byte, error) { return raw, nil }); err != nil {
		t.Fatal(err)
	}
	b, ok, err := cache.Get(context.Background(), ns+":b")
	if err != nil || !ok {
		t.Fatalf("cache.Get = %v, %v", ok, err)
	}
	if !bytes.HasSuffix(b, raw) || b[0] != 0xF1 || b[1] != 1 {
		t.Errorf("stored % x, want a version-1 envelope ending in % x", b, raw)
	}
}

// Behaviour 14: an undecodable entry is a miss, recomputed and overwritten.
func TestUndecodableEntry(t *testing.T) {
	cache := memstore.New()
	ns := namespace(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache})
	ctx := context.Background()
	for _, junk := range [][]byte{{}, []byte("not an envelope"), {0xF1, 9, 0}, badPayload()} {
		cache.Set(ctx, ns+":k", junk, time.Minute)
		before := g.Stats().DecodeErrors
		v, err := pgflight.Fetch(ctx, g, "k", func(context.Context) (report, error) { return report{Name: "fresh"}, nil })
		if err != nil || v.Name != "fresh" {
			t.Fatalf("Fetch over % x = %+v, %v", junk, v, err)
		}
		if g.Stats().DecodeErrors <= before {
			t.Errorf("junk % x: decode errors did not grow", junk)
		}
		if v, _ := pgflight.Fetch(ctx, g, "k", func(context.Context) (report, error) { return report{}, errBoom }); v.Name != "fresh" {
			t.Errorf("entry not overwritten: %+v", v)
		}
		g.Delete(ctx, "k")
	}
	// a payload of the wrong type for the codec
	pgflight.Fetch(ctx, g, "typed", func(context.Context) (string, error) { return "text", nil })
	v, err := pgflight.Fetch(ctx, g, "typed", func(context.Context) (int, error) { return 9, nil })
	if v != 9 || err != nil {
		t.Errorf("wrong-type entry: %d, %v; want 9, nil", v, err)
	}
}

// badPayload is a well-formed envelope, fresh for ages, whose payload is
// not JSON.
func badPayload() []byte {
	b := []byte{0xF1, 1, 0}
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)                         // computed at
	b = append(b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // fresh until
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)                         // took
	return append(b, '{')
}

// Behaviour 14: a value the codec cannot encode is an error; nothing stored.
func TestUnencodableValue(t *testing.T) {
	cache := memstore.New()
	ns := namespace(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache})
	_, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (chan int, error) { return make(chan int), nil })
	var ee *pgflight.EncodeError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *EncodeError", err)
	}
	if _, ok, _ := cache.Get(context.Background(), ns+":k"); ok {
		t.Error("something was stored")
	}
	if s := g.Stats(); s.EncodeErrors != 1 {
		t.Errorf("encode errors = %d, want 1", s.EncodeErrors)
	}
}

func TestTTL(t *testing.T) {
	g := newGroup(t, pgflight.Config{Cache: memstore.New()})
	ctx := context.Background()
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return calls, nil }
	if _, err := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTTL(0)); err == nil {
		t.Error("WithTTL(0) accepted")
	}
	pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTTL(time.Millisecond))
	eventually(t, "the entry expires", func() bool {
		v, _ := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTTL(time.Millisecond))
		return v > 1
	})
	if _, err := pgflight.New(pgflight.Config{TTL: -1}); err == nil {
		t.Error("negative TTL accepted")
	}
}

func TestDeleteAndClose(t *testing.T) {
	g, err := pgflight.New(pgflight.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return calls, nil }
	pgflight.Fetch(ctx, g, "k", fn)
	if err := g.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if v, _ := pgflight.Fetch(ctx, g, "k", fn); v != 2 {
		t.Errorf("after Delete = %d, want 2", v)
	}
	// Close interrupts a computation in flight and fails later calls.
	started := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(ctx, g, "slow", func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			return 0, ctx.Err()
		})
		res <- err
	}()
	<-started
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, pgflight.ErrClosed) && !errors.Is(err, context.Canceled) {
		t.Errorf("in-flight caller err = %v, want ErrClosed", err)
	}
	if _, err := pgflight.Fetch(ctx, g, "k", fn); !errors.Is(err, pgflight.ErrClosed) {
		t.Errorf("Fetch after Close: err = %v, want ErrClosed", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// Issue 9.18: a memstore hit of a string costs two allocations: the cache
// key and the copy memstore returns (no flight, no boxing, no copy of the
// payload).
func TestHitAllocations(t *testing.T) {
	mem := memstore.New()
	t.Cleanup(func() { mem.Close() })
	g := newGroup(t, pgflight.Config{Cache: mem})
	ctx := context.Background()
	fn := func(context.Context) (string, error) { return "value-of-a-typical-size-0123456789", nil }
	if _, err := pgflight.Fetch(ctx, g, "k", fn); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { pgflight.Fetch(ctx, g, "k", fn) }); n > 2 {
		t.Errorf("a hit costs %v allocations, want at most 2", n)
	}
}

// A Codec that panics while a hit decodes ends the flight with a
// *PanicError, for the caller and for whoever joined it.
func TestCodecPanicOnHit(t *testing.T) {
	mem := memstore.New()
	t.Cleanup(func() { mem.Close() })
	cfg := pgflight.Config{Namespace: namespace(t), Cache: mem}
	if _, err := pgflight.Fetch(context.Background(), newGroup(t, cfg), "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	cfg.Codec = panickyCodec{}
	g := newGroup(t, cfg)
	var pe *pgflight.PanicError
	if _, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (int, error) { return 2, nil }); !errors.As(err, &pe) {
		t.Fatalf("Fetch = %v, want a *PanicError", err)
	}
	if s := g.Stats(); s.Panics != 1 {
		t.Errorf("Stats.Panics = %d, want 1", s.Panics)
	}
}

type panickyCodec struct{ pgflight.JSONCodec }

func (panickyCodec) Unmarshal([]byte, any) error { panic("codec broke") }
