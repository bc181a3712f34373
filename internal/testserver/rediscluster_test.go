package testserver_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/internal/testserver"
)

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c, err := testserver.StartRedisCluster(testserver.RedisClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	addrs := c.Addrs()
	if len(addrs) != 3 || len(c.Nodes()) != 3 {
		t.Fatalf("Addrs() = %q, %d Nodes(); want 3 of each", addrs, len(c.Nodes()))
	}
	for i, node := range c.Nodes() {
		if node.Addr() != addrs[i] {
			t.Errorf("Nodes()[%d].Addr() = %q, want Addrs()[%d] = %q", i, node.Addr(), i, addrs[i])
		}
		wantRedisUp(t, node.URL())
		info, err := newRedis(t, node.URL()).ClusterInfo(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"cluster_state:ok", "cluster_known_nodes:3", "cluster_size:3"} {
			if !strings.Contains(info, want+"\r\n") {
				t.Errorf("CLUSTER INFO on %s lacks %q:\n%s", node.Addr(), want, info)
			}
		}
	}
	opt, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opt.Addrs, addrs) {
		t.Errorf("ParseClusterURL(URL()).Addrs = %q, want %q", opt.Addrs, addrs)
	}
	opt.MaxRedirects = 1
	rdb := redis.NewClusterClient(opt)
	t.Cleanup(func() { rdb.Close() })

	// Node i serves the i-th third of the slots.
	ranges, err := rdb.ClusterSlots(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ranges, func(a, b redis.ClusterSlot) int { return a.Start - b.Start })
	var got []string
	for _, r := range ranges {
		got = append(got, fmt.Sprintf("%d-%d %s", r.Start, r.End, r.Nodes[0].Addr))
	}
	want := []string{"0-5460 " + addrs[0], "5461-10921 " + addrs[1], "10922-16383 " + addrs[2]}
	if !slices.Equal(got, want) {
		t.Errorf("CLUSTER SLOTS = %q, want %q", got, want)
	}

	// A key on each node, written through the cluster client, is on that
	// node.
	keys := keyPerNode(t, rdb, addrs)
	for i, k := range keys {
		if err := rdb.Set(t.Context(), k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := newRedis(t, c.Nodes()[i].URL()).Get(t.Context(), k).Result(); v != "v" || err != nil {
			t.Errorf("GET %s on node %d = %q, %v; want \"v\", nil", k, i, v, err)
		}
	}

	t.Run("Kill", func(t *testing.T) {
		node := c.Nodes()[1]
		if err := node.Kill(); err != nil {
			t.Fatal(err)
		}
		wantRedisDown(t, node.URL())
		if err := rdb.Get(t.Context(), keys[1]).Err(); err == nil {
			t.Errorf("GET of a key on the killed node succeeded")
		}
		if err := node.Start(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitOK(); err != nil {
			t.Fatal(err)
		}
		// Back with its slots, and without its data.
		if err := rdb.Get(t.Context(), keys[1]).Err(); err != redis.Nil {
			t.Errorf("GET of a key on the restarted node: err = %v, want redis.Nil", err)
		}
		if err := rdb.Set(t.Context(), keys[1], "w", 0).Err(); err != nil {
			t.Errorf("SET on the restarted node: %v", err)
		}
	})

	rdb.Close() // before its nodes go, so that it does not log their absence
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, node := range c.Nodes() {
		wantRedisDown(t, node.URL())
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRedisClusterOptions(t *testing.T) {
	t.Parallel()
	c, err := testserver.StartRedisCluster(testserver.RedisClusterOptions{Masters: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := newRedis(t, c.Nodes()[0].URL()).ClusterInfo(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "cluster_state:ok\r\n") || !strings.Contains(info, "cluster_slots_assigned:16384\r\n") {
		t.Errorf("CLUSTER INFO of a one-master cluster:\n%s\nwant state ok and every slot assigned", info)
	}
	if _, err := testserver.StartRedisCluster(testserver.RedisClusterOptions{Masters: -1}); err == nil {
		t.Error("StartRedisCluster with -1 masters succeeded")
	}
}

// keyPerNode returns a key served by each of addrs, in order.
func keyPerNode(t *testing.T, rdb *redis.ClusterClient, addrs []string) []string {
	t.Helper()
	keys := make([]string, len(addrs))
	found := 0
	for i := 0; found < len(addrs); i++ {
		if i == 1000 {
			t.Fatalf("no key on some node among 1000 keys: %q", keys)
		}
		k := fmt.Sprintf("k%d", i)
		m, err := rdb.MasterForKey(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		if j := slices.Index(addrs, m.Options().Addr); j >= 0 && keys[j] == "" {
			keys[j] = k
			found++
		}
	}
	return keys
}
