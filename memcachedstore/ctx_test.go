package memcachedstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/goleak"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/memcachedstore"
)

// ctxCalls are the Store's calls, each sent with ctx to its own key.
var ctxCalls = []struct {
	name string
	call func(ctx context.Context, s *memcachedstore.Store, key string) error
}{
	{"Get", func(ctx context.Context, s *memcachedstore.Store, key string) error {
		_, _, err := s.Get(ctx, key)
		return err
	}},
	{"Set", func(ctx context.Context, s *memcachedstore.Store, key string) error {
		return s.Set(ctx, key, []byte("v"), time.Minute)
	}},
	{"Delete", func(ctx context.Context, s *memcachedstore.Store, key string) error {
		return s.Delete(ctx, key)
	}},
	{"GetMany", func(ctx context.Context, s *memcachedstore.Store, key string) error {
		_, err := s.GetMany(ctx, []string{key, key + "2"})
		return err
	}},
	{"SetMany", func(ctx context.Context, s *memcachedstore.Store, key string) error {
		return s.SetMany(ctx, []string{key, key + "2"}, [][]byte{[]byte("v"), []byte("v2")}, []time.Duration{time.Minute, time.Minute})
	}},
}

// TestStalledServer freezes the server and sends every call with a ctx
// that ends after 100 ms, by its deadline or cancelled, through a client
// whose Timeout (5 s) would keep gomemcache waiting 50 times longer. Each
// call must fail with an error wrapping ctx.Err(): gomemcache's own error
// would be an i/o timeout. Once the server resumes, the Store must work
// again, and every command left in the background must have finished.
func TestStalledServer(t *testing.T) {
	srv, err := testserver.StartMemcached()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mc := memcache.New(srv.Addr())
	mc.Timeout = 5 * time.Second
	mc.MaxIdleConns = len(ctxCalls) * 2
	defer mc.Close()
	s := memcachedstore.New(mc)
	if err := s.Set(t.Context(), "k", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Every goroutine from here on must be gone once the server resumes.
	leaks := goleak.IgnoreCurrent()

	const wait = 100 * time.Millisecond
	ctxs := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc, error)
	}{
		{"deadline", func() (context.Context, context.CancelFunc, error) {
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			return ctx, cancel, context.DeadlineExceeded
		}},
		{"cancel", func() (context.Context, context.CancelFunc, error) {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(wait, cancel)
			return ctx, cancel, context.Canceled
		}},
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	for _, c := range ctxs {
		for _, tc := range ctxCalls {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				ctx, cancel, want := c.ctx()
				defer cancel()
				start := time.Now()
				err := tc.call(ctx, s, t.Name())
				t.Logf("measured: %s on a frozen server, ctx ending after %v: returned after %v", tc.name, wait, time.Since(start).Round(100*time.Microsecond))
				if !errors.Is(err, want) {
					t.Errorf("%s = %v, want an error wrapping %v", tc.name, err, want)
				}
			})
		}
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if val, ok, err := s.Get(ctx, "k"); string(val) != "v" || !ok || err != nil {
		t.Errorf("Get after the server resumed = %q, %v, %v; want %q, true, nil", val, ok, err, "v")
	}
	if err := s.Set(ctx, "k2", []byte("v2"), time.Minute); err != nil {
		t.Errorf("Set after the server resumed = %v, want nil", err)
	}
	if val, ok, err := s.Get(ctx, "k2"); string(val) != "v2" || !ok || err != nil {
		t.Errorf("Get after the server resumed = %q, %v, %v; want %q, true, nil", val, ok, err, "v2")
	}
	mc.Close()
	goleak.VerifyNone(t, leaks)
}
