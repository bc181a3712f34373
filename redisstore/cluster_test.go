package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
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

// redisstore's batch methods are what FetchMany reads and writes with.
var _ pgflight.BatchCache = (*redisstore.Store)(nil)

// newClusterClient returns a client of the test cluster, closed when tb
// ends.
func newClusterClient(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	opt, err := redis.ParseClusterURL(testserver.RedisClusterURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClusterClient(opt)
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestStoreCluster(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		return redisstore.New(newClusterClient(t))
	})
}

func TestStoreClusterWithPrefix(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		return redisstore.New(newClusterClient(t), redisstore.WithPrefix("prefixed:"))
	})
}

// TestStoreClusterUniversalClient runs the suite through
// redis.NewUniversalClient with the cluster's addresses, which makes a
// *redis.ClusterClient.
func TestStoreClusterUniversalClient(t *testing.T) {
	opt, err := redis.ParseClusterURL(testserver.RedisClusterURL(t))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: opt.Addrs, IsClusterMode: true})
		t.Cleanup(func() { rdb.Close() })
		if _, ok := rdb.(*redis.ClusterClient); !ok {
			t.Fatalf("NewUniversalClient made a %T, want a *redis.ClusterClient", rdb)
		}
		return redisstore.New(rdb)
	})
}

// spread returns n keys named prefix+i, and fails t unless they land on
// every master of rdb and on more than one slot of each: a batch of them
// must be split across nodes and cannot be one multi-key command even
// within a node.
func spread(t *testing.T, rdb *redis.ClusterClient, prefix string, n int) []string {
	t.Helper()
	keys := make([]string, n)
	slotsOf := make(map[string]map[int64]bool) // master address → slots
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%d", prefix, i)
		m, err := rdb.MasterForKey(t.Context(), keys[i])
		if err != nil {
			t.Fatal(err)
		}
		slot, err := rdb.ClusterKeySlot(t.Context(), keys[i]).Result()
		if err != nil {
			t.Fatal(err)
		}
		addr := m.Options().Addr
		if slotsOf[addr] == nil {
			slotsOf[addr] = make(map[int64]bool)
		}
		slotsOf[addr][slot] = true
	}
	if n, want := len(slotsOf), len(masters(t, rdb)); n != want {
		t.Fatalf("%d keys land on %d masters, want all %d", len(keys), n, want)
	}
	for addr, s := range slotsOf {
		if len(s) < 2 {
			t.Fatalf("keys land on %d slot of %s, want several", len(s), addr)
		}
	}
	return keys
}

// testLogger returns a logger that writes to t's output.
func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// masters returns the addresses of rdb's masters.
func masters(t *testing.T, rdb *redis.ClusterClient) []string {
	t.Helper()
	ranges, err := rdb.ClusterSlots(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, r := range ranges {
		if !slices.Contains(addrs, r.Nodes[0].Addr) {
			addrs = append(addrs, r.Nodes[0].Addr)
		}
	}
	return addrs
}

// TestClusterBatch writes and reads batches whose keys are on every master
// and many slots, with misses among them, and checks every value against
// the node that serves its key.
func TestClusterBatch(t *testing.T) {
	rdb := newClusterClient(t)
	s := redisstore.New(rdb)
	ctx := t.Context()
	keys := spread(t, rdb, t.Name()+":", 300)
	t.Cleanup(func() {
		for _, k := range keys {
			rdb.Del(context.Background(), k)
		}
	})

	// Every third key stays missing; the others get distinct values.
	var setKeys []string
	var vals [][]byte
	for i, k := range keys {
		if i%3 != 2 {
			setKeys = append(setKeys, k)
			vals = append(vals, []byte("v"+k))
		}
	}
	ttls := slices.Repeat([]time.Duration{time.Minute}, len(setKeys))
	if err := s.SetMany(ctx, setKeys, vals, ttls); err != nil {
		t.Fatalf("SetMany across slots: %v", err)
	}
	for i, k := range setKeys {
		m, err := rdb.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Get(ctx, k).Bytes()
		if err != nil || !bytes.Equal(got, vals[i]) {
			t.Fatalf("GET %s on its master %s = %q, %v; want %q", k, m.Options().Addr, got, err, vals[i])
		}
	}

	got, err := s.GetMany(ctx, keys)
	if err != nil {
		t.Fatalf("GetMany across slots: %v", err)
	}
	if len(got) != len(keys) {
		t.Fatalf("GetMany returned %d values for %d keys", len(got), len(keys))
	}
	for i, k := range keys {
		want := []byte("v" + k)
		if i%3 == 2 {
			want = nil
		}
		if !bytes.Equal(got[i], want) || (got[i] == nil) != (want == nil) {
			t.Errorf("GetMany[%s] = %q, want %q", k, got[i], want)
		}
	}
}

// TestClusterFetchMany runs FetchMany over 1,000 keys on the cluster: each
// value is computed once, stored on the master that serves its key, and
// read back by another Group without computing.
func TestClusterFetchMany(t *testing.T) {
	rdb := newClusterClient(t)
	ctx := t.Context()
	ns := fmt.Sprintf("cluster-fetch-many-%d", time.Now().UnixNano())
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	t.Cleanup(func() {
		for _, k := range keys {
			rdb.Del(context.Background(), ns+":"+k)
		}
	})
	newGroup := func() *pgflight.Group {
		g, err := pgflight.New(pgflight.Config{Cache: redisstore.New(rdb), Namespace: ns, TTL: time.Minute, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}

	var mu sync.Mutex
	computed := make(map[string]int)
	fn := func(ctx context.Context, missing []string) (map[string]string, error) {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]string, len(missing))
		for _, k := range missing {
			computed[k]++
			out[k] = "value of " + k
		}
		return out, nil
	}
	g := newGroup()
	got, err := pgflight.FetchMany(ctx, g, keys, fn)
	if err != nil {
		t.Fatal(err)
	}
	wantAll := func(got map[string]string) {
		t.Helper()
		if len(got) != len(keys) {
			t.Errorf("FetchMany returned %d values, want %d", len(got), len(keys))
		}
		for _, k := range keys {
			if want := "value of " + k; got[k] != want {
				t.Errorf("FetchMany[%s] = %q, want %q", k, got[k], want)
			}
		}
	}
	wantAll(got)
	for _, k := range keys {
		if computed[k] != 1 {
			t.Errorf("%s computed %d times, want 1", k, computed[k])
		}
	}
	if st := g.Stats(); st.CacheErrors != 0 {
		t.Errorf("Stats().CacheErrors = %d, want 0", st.CacheErrors)
	}

	// The entries are spread over the masters, all of them stored.
	var total, nodes int
	var countMu sync.Mutex
	err = rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n := 0
		iter := m.Scan(ctx, 0, ns+":*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		countMu.Lock()
		defer countMu.Unlock()
		total += n
		if n > 0 {
			nodes++
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(masters(t, rdb)); total != len(keys) || nodes != want {
		t.Errorf("%d entries on %d masters, want %d on %d", total, nodes, len(keys), want)
	}

	// Another Group, as another process would, reads them all back.
	g2 := newGroup()
	got, err = pgflight.FetchMany(ctx, g2, keys, func(ctx context.Context, missing []string) (map[string]string, error) {
		return nil, fmt.Errorf("computed %d keys (%s…), want every one read from the cluster", len(missing), missing[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	wantAll(got)
	if st := g2.Stats(); st.Hits != uint64(len(keys)) || st.Computations != 0 {
		t.Errorf("second Group: %d hits, %d computations; want %d, 0", st.Hits, st.Computations, len(keys))
	}
}

// TestClusterNodeDown kills one master of a cluster of the test's own:
// every call of the Store that involves it returns an error rather than
// hang, and pgflight, failing open, still returns every value.
func TestClusterNodeDown(t *testing.T) {
	c, err := testserver.StartRedisCluster(testserver.RedisClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// No retries, which with go-redis's defaults (MaxRedirects 3,
	// DialerRetries 5) take some 1.7 s per call before it fails.
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRedirects: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	s := redisstore.New(rdb)
	g, err := pgflight.New(pgflight.Config{Cache: s, Namespace: "down", TTL: time.Minute, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	keys := spread(t, rdb, "", 30)
	// The keys the killed master serves, in the namespace's cache keys.
	dead := c.Nodes()[1]
	var deadKeys []string
	for _, k := range keys {
		m, err := rdb.MasterForKey(t.Context(), "down:"+k)
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr == dead.Addr() {
			deadKeys = append(deadKeys, k)
		}
	}
	if len(deadKeys) == 0 {
		t.Fatal("no key on the master to kill")
	}
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}

	// A bound far beyond go-redis's retries: the calls must fail on their
	// own, with the node's error, not at the deadline.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	notDeadline := func(op string, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s with a master down = nil error, want one", op)
		case ctx.Err() != nil:
			t.Errorf("%s with a master down: %v; want it to fail before its ctx ends", op, err)
		case !strings.HasPrefix(err.Error(), "redisstore: "):
			t.Errorf("%s error = %q, want it to start with %q", op, err, "redisstore: ")
		}
	}
	_, ok, err := s.Get(ctx, "down:"+deadKeys[0])
	if ok {
		t.Error("Get of a key on the dead master reported a hit")
	}
	notDeadline("Get", err)
	notDeadline("Set", s.Set(ctx, "down:"+deadKeys[0], []byte("v"), time.Minute))
	vals, err := s.GetMany(ctx, keys)
	if vals != nil {
		t.Errorf("GetMany with a master down returned values %q alongside its error", vals)
	}
	notDeadline("GetMany", err)
	ttls := slices.Repeat([]time.Duration{time.Minute}, len(keys))
	notDeadline("SetMany", s.SetMany(ctx, keys, slices.Repeat([][]byte{[]byte("v")}, len(keys)), ttls))

	got, err := pgflight.Fetch(ctx, g, deadKeys[0], func(ctx context.Context) (string, error) {
		return "computed", nil
	})
	if got != "computed" || err != nil {
		t.Errorf("Fetch with its master down = %q, %v; want %q, nil (fail open)", got, err, "computed")
	}
	many, err := pgflight.FetchMany(ctx, g, keys, func(ctx context.Context, missing []string) (map[string]string, error) {
		out := make(map[string]string, len(missing))
		for _, k := range missing {
			out[k] = "computed " + k
		}
		return out, nil
	})
	if err != nil {
		t.Fatalf("FetchMany with a master down: %v, want nil (fail open)", err)
	}
	for _, k := range keys {
		if want := "computed " + k; many[k] != want {
			t.Errorf("FetchMany[%s] with a master down = %q, want %q", k, many[k], want)
		}
	}
	if ctx.Err() != nil {
		t.Errorf("Fetch and FetchMany with a master down took until their ctx ended")
	}
	if st := g.Stats(); st.CacheErrors == 0 {
		t.Error("Stats().CacheErrors = 0 with a master down, want the failed reads and writes counted")
	}
}
