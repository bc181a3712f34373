package redisstore_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/redisstore"
	"github.com/pgflight/pgflight/storetest"
)

// redisstore does not import pgflight, so it asserts its contracts here.
var (
	_ pgflight.Cache   = (*redisstore.Store)(nil)
	_ pgflight.Deleter = (*redisstore.Store)(nil)
)

// newClient returns a client of the test server, closed when tb ends.
func newClient(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(testserver.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		return redisstore.New(newClient(t))
	})
}

func TestStoreWithPrefix(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		return redisstore.New(newClient(t), redisstore.WithPrefix("prefixed:"))
	})
}

// TestStoreUniversalClient runs the suite through redis.NewUniversalClient,
// as an application configured for Sentinel or Cluster would build its
// client; with one address and no master name it makes a *redis.Client.
func TestStoreUniversalClient(t *testing.T) {
	opt, err := redis.ParseURL(testserver.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{opt.Addr}, DB: opt.DB})
		t.Cleanup(func() { rdb.Close() })
		return redisstore.New(rdb)
	})
}

func TestPrefix(t *testing.T) {
	rdb := newClient(t)
	ctx := t.Context()
	key := t.Name() + ":k"
	s := redisstore.New(rdb, redisstore.WithPrefix("p:"))
	if err := s.Set(ctx, key, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), "p:"+key) })
	if got, err := rdb.Get(ctx, "p:"+key).Result(); got != "v" || err != nil {
		t.Errorf(`GET "p:"+key = %q, %v; want "v", nil`, got, err)
	}
	if n, err := rdb.Exists(ctx, key).Result(); n != 0 || err != nil {
		t.Errorf("EXISTS key without prefix = %d, %v; want 0, nil", n, err)
	}
}

// recorder is a go-redis hook that records the arguments of every command
// the client sends to the server, its own handshake included.
type recorder struct {
	mu   sync.Mutex
	cmds [][]any
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.mu.Lock()
		r.cmds = append(r.cmds, slices.Clone(cmd.Args()))
		r.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// last returns the arguments of the last command named name, or nil.
func (r *recorder) last(name string) []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, args := range slices.Backward(r.cmds) {
		if len(args) > 0 && args[0] == name {
			return args
		}
	}
	return nil
}

// TestSetTTL checks the expiry that Set sends: whole milliseconds rounded
// up, never less than 1 ms, never go-redis/cache's "under a second means an
// hour".
func TestSetTTL(t *testing.T) {
	rdb := newClient(t)
	rec := new(recorder)
	rdb.AddHook(rec)
	s := redisstore.New(rdb)
	key := t.Name() + ":k"
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	tests := []struct {
		ttl  time.Duration
		want []any // the expiry arguments of SET
	}{
		{-time.Second, []any{"px", int64(1)}},
		{0, []any{"px", int64(1)}},
		{time.Nanosecond, []any{"px", int64(1)}},
		{999 * time.Microsecond, []any{"px", int64(1)}},
		{time.Millisecond, []any{"px", int64(1)}},
		{time.Millisecond + time.Nanosecond, []any{"px", int64(2)}},
		{1500 * time.Microsecond, []any{"px", int64(2)}},
		{100 * time.Millisecond, []any{"px", int64(100)}},
		{time.Second, []any{"ex", int64(1)}},
		{1500 * time.Millisecond, []any{"px", int64(1500)}},
		{time.Hour, []any{"ex", int64(3600)}},
		{time.Hour + time.Nanosecond, []any{"px", int64(3600001)}},
	}
	for _, tc := range tests {
		t.Run(tc.ttl.String(), func(t *testing.T) {
			if err := s.Set(t.Context(), key, []byte("v"), tc.ttl); err != nil {
				t.Fatal(err)
			}
			got := rec.last("set")
			if len(got) != 5 || got[1] != key {
				t.Fatalf("sent %q, want SET key val and an expiry", got)
			}
			if !slices.Equal(got[3:], tc.want) {
				t.Errorf("Set(ttl %v) sent expiry %v, want %v", tc.ttl, got[3:], tc.want)
			}
		})
	}

	// The server agrees: an hour and a nanosecond is an hour and a
	// millisecond at most, and more than 3599 s.
	pttl, err := rdb.PTTL(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= time.Hour-time.Second || pttl > time.Hour+time.Millisecond {
		t.Errorf("PTTL after Set(ttl 1h+1ns) = %v, want about an hour", pttl)
	}
}

// TestDeadServer points a client at a closed port: every call must fail
// with an error that names the operation, and Get must not report a miss.
func TestDeadServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	defer rdb.Close()
	s := redisstore.New(rdb)
	ctx := t.Context()

	val, ok, err := s.Get(ctx, "k")
	if err == nil || ok || val != nil {
		t.Errorf("Get = %q, %v, %v; want nil, false, an error", val, ok, err)
	} else if !strings.HasPrefix(err.Error(), "redisstore: get: ") {
		t.Errorf("Get error = %q, want it to start with %q", err, "redisstore: get: ")
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Error("Set = nil, want an error")
	} else if !strings.HasPrefix(err.Error(), "redisstore: set: ") {
		t.Errorf("Set error = %q, want it to start with %q", err, "redisstore: set: ")
	}
	if err := s.Delete(ctx, "k"); err == nil {
		t.Error("Delete = nil, want an error")
	} else if !strings.HasPrefix(err.Error(), "redisstore: delete: ") {
		t.Errorf("Delete error = %q, want it to start with %q", err, "redisstore: delete: ")
	}
}

// TestStalledServer freezes the server while a Get waits for its reply: with
// ContextTimeoutEnabled, the Get ends at ctx's deadline with an error that
// wraps context.DeadlineExceeded, and the Store works again once the server
// does.
func TestStalledServer(t *testing.T) {
	srv, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer rdb.Close()
	s := redisstore.New(rdb)
	if err := s.Set(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	val, ok, err := s.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) || ok || val != nil {
		t.Errorf("Get from a frozen server = %q, %v, %v; want nil, false, an error wrapping context.DeadlineExceeded", val, ok, err)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if val, ok, err := s.Get(t.Context(), "k"); string(val) != "v" || !ok || err != nil {
		t.Errorf("Get after the server resumed = %q, %v, %v; want %q, true, nil", val, ok, err, "v")
	}
}
