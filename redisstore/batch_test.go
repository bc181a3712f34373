package redisstore_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/redisstore"
)

// trips is a go-redis hook that counts what a client sends: single
// commands by name, and pipelines, for each node it is added to.
type trips struct {
	mu        sync.Mutex
	commands  map[string]int // "addr name" → count
	pipelines map[string]int // addr → count
}

func newTrips() *trips {
	return &trips{commands: make(map[string]int), pipelines: make(map[string]int)}
}

// hook returns the hook to add to the client of the node at addr.
func (tr *trips) hook(addr string) redis.Hook { return tripsHook{tr, addr} }

func (tr *trips) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	clear(tr.commands)
	clear(tr.pipelines)
}

type tripsHook struct {
	tr   *trips
	addr string
}

func (h tripsHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tripsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.tr.mu.Lock()
		h.tr.commands[h.addr+" "+cmd.Name()]++
		h.tr.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h tripsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.tr.mu.Lock()
		h.tr.pipelines[h.addr]++
		h.tr.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestGetManyRoundTrips checks what GetMany sends: one MGET to a single
// node, and one pipeline to each master of a cluster.
func TestGetManyRoundTrips(t *testing.T) {
	t.Run("node", func(t *testing.T) {
		rdb := newClient(t)
		tr := newTrips()
		rdb.AddHook(tr.hook("node"))
		// A connection in the pool first: a new one sends its handshake
		// (HELLO, CLIENT SETINFO) through the hooks too.
		if err := rdb.Ping(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		tr.reset()
		keys := make([]string, 50)
		for i := range keys {
			keys[i] = fmt.Sprintf("%s:%d", t.Name(), i)
		}
		if _, err := redisstore.New(rdb).GetMany(t.Context(), keys); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"node mget": 1}
		if !maps.Equal(tr.commands, want) || len(tr.pipelines) != 0 {
			t.Errorf("GetMany of %d keys sent %v and pipelines %v, want %v and none", len(keys), tr.commands, tr.pipelines, want)
		}
	})

	t.Run("cluster", func(t *testing.T) {
		rdb := newClusterClient(t)
		tr := newTrips()
		rdb.OnNewNode(func(node *redis.Client) { node.AddHook(tr.hook(node.Options().Addr)) })
		keys := spread(t, rdb, t.Name()+":", 100) // loads the cluster's slots first
		addrs := masters(t, rdb)
		slices.Sort(addrs)
		s := redisstore.New(rdb)
		// A first GetMany leaves a connection to each master in its pool,
		// as in the node case.
		if _, err := s.GetMany(t.Context(), keys); err != nil {
			t.Fatal(err)
		}
		tr.reset()
		if _, err := s.GetMany(t.Context(), keys); err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(tr.pipelines)); !slices.Equal(got, addrs) || slices.Max(slices.Collect(maps.Values(tr.pipelines))) != 1 {
			t.Errorf("GetMany of %d keys sent pipelines %v, want one to each master %q", len(keys), tr.pipelines, addrs)
		}
		for c, n := range tr.commands {
			t.Errorf("GetMany sent %d single commands %s, want none", n, c)
		}
	})
}
