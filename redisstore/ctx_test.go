package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/redisstore"
)

// ctxCalls are the Store's calls, each sent with ctx to its own key.
var ctxCalls = []struct {
	name string
	call func(ctx context.Context, s *redisstore.Store, key string) error
}{
	{"Get", func(ctx context.Context, s *redisstore.Store, key string) error {
		_, _, err := s.Get(ctx, key)
		return err
	}},
	{"Set", func(ctx context.Context, s *redisstore.Store, key string) error {
		return s.Set(ctx, key, []byte("v"), time.Minute)
	}},
	{"Delete", func(ctx context.Context, s *redisstore.Store, key string) error {
		return s.Delete(ctx, key)
	}},
	{"GetMany", func(ctx context.Context, s *redisstore.Store, key string) error {
		_, err := s.GetMany(ctx, []string{key, key + "2"})
		return err
	}},
	{"SetMany", func(ctx context.Context, s *redisstore.Store, key string) error {
		return s.SetMany(ctx, []string{key, key + "2"}, [][]byte{[]byte("v"), []byte("v2")}, []time.Duration{time.Minute, time.Minute})
	}},
}

// TestStalledServerCtx freezes the server and sends every call with a ctx
// that ends after 200 ms, through clients that go-redis alone would keep
// waiting for the reply until their ReadTimeout (5 s): one from
// redis.ParseURL, without ContextTimeoutEnabled, with ctx deadlines and with
// ctx cancelled; and one with ContextTimeoutEnabled, with ctx cancelled
// without a deadline. Each call must return within a second with an error
// wrapping ctx.Err(); once the server resumes, the Store must work, and the
// commands left in the background must have finished.
func TestStalledServerCtx(t *testing.T) {
	srv, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if opt.ContextTimeoutEnabled {
		t.Fatal("redis.ParseURL set ContextTimeoutEnabled; this test needs a client without it")
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	optCT := *opt
	optCT.ContextTimeoutEnabled = true
	rdbCT := redis.NewClient(&optCT)
	defer rdbCT.Close()

	s, sCT := redisstore.New(rdb), redisstore.New(rdbCT)
	for _, s := range []*redisstore.Store{s, sCT} {
		if err := s.Set(t.Context(), "k", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// Every goroutine from here on must be gone once the server resumes
	// and the clients are closed.
	leaks := goleak.IgnoreCurrent()

	const wait = 200 * time.Millisecond
	deadline := func() (context.Context, context.CancelFunc, error) {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		return ctx, cancel, context.DeadlineExceeded
	}
	cancelled := func() (context.Context, context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(wait, cancel)
		return ctx, cancel, context.Canceled
	}
	runs := []struct {
		name string
		s    *redisstore.Store
		ctx  func() (context.Context, context.CancelFunc, error)
	}{
		{"ParseURL/deadline", s, deadline},
		{"ParseURL/cancel", s, cancelled},
		{"ContextTimeoutEnabled/cancel", sCT, cancelled},
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
	for _, run := range runs {
		for _, tc := range ctxCalls {
			t.Run(run.name+"/"+tc.name, func(t *testing.T) {
				ctx, cancel, want := run.ctx()
				defer cancel()
				start := time.Now()
				err := tc.call(ctx, run.s, t.Name())
				took := time.Since(start)
				t.Logf("measured: %s on a frozen server, ctx ending after %v: returned after %v, %v past ctx's end", tc.name, wait, took.Round(100*time.Microsecond), (took - wait).Round(100*time.Microsecond))
				if !errors.Is(err, want) {
					t.Errorf("%s = %v, want an error wrapping %v", tc.name, err, want)
				}
				if took > time.Second {
					t.Errorf("%s returned after %v, want within a second of its start (its ctx ended after %v)", tc.name, took, wait)
				}
			})
		}
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	for name, s := range map[string]*redisstore.Store{"ParseURL": s, "ContextTimeoutEnabled": sCT} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		key := t.Name() + ":" + name
		if err := s.Set(ctx, key, []byte(name), time.Minute); err != nil {
			t.Errorf("%s: Set after the server resumed = %v, want nil", name, err)
		}
		if val, ok, err := s.Get(ctx, key); string(val) != name || !ok || err != nil {
			t.Errorf("%s: Get after the server resumed = %q, %v, %v; want %q, true, nil", name, val, ok, err, name)
		}
		if val, ok, err := s.Get(ctx, "k"); string(val) != "v" || !ok || err != nil {
			t.Errorf("%s: Get(k) after the server resumed = %q, %v, %v; want %q, true, nil", name, val, ok, err, "v")
		}
		cancel()
	}
	rdb.Close()
	rdbCT.Close()
	goleak.VerifyNone(t, leaks)
}
