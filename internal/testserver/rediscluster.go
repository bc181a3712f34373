package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisClusterURLEnv names a running Redis Cluster for the tests: when it is
// set, [RedisClusterURL] returns it and starts nothing. It is a URL that
// redis.ParseClusterURL reads, redis://HOST:PORT?addr=HOST:PORT&addr=….
const RedisClusterURLEnv = "PGFLIGHT_TEST_REDIS_CLUSTER_URL"

// slots is the number of hash slots of a Redis Cluster.
const slots = 16384

// RedisClusterOptions configures [StartRedisCluster]. The zero value is a
// cluster of three masters.
type RedisClusterOptions struct {
	// Masters is the number of masters. They share the hash slots in equal
	// ranges, in order: the first serves the lowest slots.
	//
	// Default: 3.
	Masters int

	// NodeTimeout is each node's cluster-node-timeout: how long a node may
	// stay unreachable before the others mark it failed. Since the cluster
	// has no replicas and requires full coverage, a failed master then
	// makes every node refuse commands (CLUSTERDOWN) until it is back.
	//
	// Default: 1 second.
	NodeTimeout time.Duration
}

// RedisCluster is a Redis Cluster of its own, started by
// [StartRedisCluster]: masters only, no replicas, each a redis-server in a
// temporary directory of its own, on free ports of 127.0.0.1 (one for
// clients, one for the cluster bus), with persistence off. Its methods are
// safe for concurrent use by multiple goroutines.
type RedisCluster struct {
	nodes []*Redis
	buses []int // the cluster bus port of each node
}

// StartRedisCluster starts opts.Masters redis-servers from PATH in cluster
// mode, assigns each an equal range of the hash slots, introduces them to
// one another, and returns once every node reports cluster_state:ok and
// knows all the others. That takes about two seconds: a master that has
// just started waits that long before it accepts writes. The caller must
// Close it.
func StartRedisCluster(opts RedisClusterOptions) (*RedisCluster, error) {
	n := opts.Masters
	if n == 0 {
		n = 3
	}
	timeout := opts.NodeTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	if n < 1 || n > slots {
		return nil, fmt.Errorf("testserver: start redis cluster: %d masters, want 1 to %d", n, slots)
	}
	if timeout < time.Millisecond {
		return nil, fmt.Errorf("testserver: start redis cluster: node timeout %v, want at least 1ms", timeout)
	}
	path, err := lookPath("redis-server", "redis-server")
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	c := new(RedisCluster)
	for range n {
		node, bus, err := startClusterNode(path, timeout)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("testserver: start redis cluster: %w", err)
		}
		c.nodes = append(c.nodes, node)
		c.buses = append(c.buses, bus)
	}
	if err := c.form(); err != nil {
		c.Close()
		return nil, fmt.Errorf("testserver: start redis cluster: %w", err)
	}
	return c, nil
}

// startClusterNode starts one empty cluster node on a free client port and
// a free bus port. Redis would put the bus on the client port + 10000,
// which is past 65535 for much of the ephemeral range, so it gets a port
// of its own (cluster-port, Redis 7).
func startClusterNode(path string, nodeTimeout time.Duration) (*Redis, int, error) {
	const name = "redis-server"
	dir, err := makeDir("redis-cluster", nil)
	if err != nil {
		return nil, 0, err
	}
	d := &daemon{
		name:  name,
		ready: redisReady,
		dir:   dir,
		proc:  process{name: name, path: path, dir: dir, log: filepath.Join(dir, name+".log")},
	}
	var bus int
	err = withFreePort(func(port int) error {
		for bus = port; bus == port; {
			if bus, err = freePort(); err != nil {
				return err
			}
		}
		d.port = port
		d.args = clusterArgs(bus, nodeTimeout)
		return d.proc.start(d.args(port, dir), d.isReady)
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, 0, fmt.Errorf("start %s: %w", name, err)
	}
	return &Redis{d}, bus, nil
}

// clusterArgs returns the command line of a cluster node whose bus listens
// on bus. Its nodes.conf lives in its directory, so a node that is killed
// and started again rejoins the cluster with its identity and slots, but
// no data.
func clusterArgs(bus int, nodeTimeout time.Duration) func(port int, dir string) []string {
	return func(port int, dir string) []string {
		return append(redisArgs(port, dir),
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
		)
	}
}

// form assigns the slots, distinct config epochs (as redis-cli --cluster
// create does, so no epoch collision needs resolving) and introduces every
// node to the first, which gossips them to each other.
func (c *RedisCluster) form() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	n := len(c.nodes)
	for i, node := range c.nodes {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if _, err := redisCommand(ctx, node.Addr(), "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return err
		}
		if _, err := redisCommand(ctx, node.Addr(), "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return err
		}
	}
	for i, node := range c.nodes[1:] {
		if _, err := redisCommand(ctx, c.nodes[0].Addr(), "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(node.Port()), strconv.Itoa(c.buses[i+1])); err != nil {
			return err
		}
	}
	return c.waitOK(ctx)
}

// WaitOK returns once every node reports cluster_state:ok and knows every
// other node, or fails after 30 seconds. Use it after starting a node that
// was stopped or killed: the others trust a failed master again only once
// it has been back for twice the node timeout.
func (c *RedisCluster) WaitOK() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.waitOK(ctx); err != nil {
		return fmt.Errorf("testserver: redis cluster: %w", err)
	}
	return nil
}

func (c *RedisCluster) waitOK(ctx context.Context) error {
	known := "cluster_known_nodes:" + strconv.Itoa(len(c.nodes)) + "\r\n"
	for _, node := range c.nodes {
		for {
			info, err := redisCommand(ctx, node.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok\r\n") && strings.Contains(info, known) {
				break
			}
			if ctx.Err() != nil {
				if err == nil {
					err = errors.New(strings.ReplaceAll(strings.TrimSpace(info), "\r\n", ", "))
				}
				return fmt.Errorf("node %s not ready: %w", node.Addr(), err)
			}
			time.Sleep(pollInterval)
		}
	}
	return nil
}

// Addrs returns the nodes' addresses, 127.0.0.1:PORT, in slot order, for
// redis.ClusterOptions.Addrs.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, node := range c.nodes {
		addrs[i] = node.Addr()
	}
	return addrs
}

// URL returns the cluster's URL for redis.ParseClusterURL:
// redis://FIRST?addr=SECOND&addr=….
func (c *RedisCluster) URL() string {
	var b strings.Builder
	for i, addr := range c.Addrs() {
		switch i {
		case 0:
			b.WriteString("redis://" + addr)
		case 1:
			b.WriteString("?addr=" + addr)
		default:
			b.WriteString("&addr=" + addr)
		}
	}
	return b.String()
}

// Nodes returns the cluster's nodes in slot order, so that a test can stop,
// kill or freeze one. A node started again keeps its slots but has lost
// its data; see [RedisCluster.WaitOK].
func (c *RedisCluster) Nodes() []*Redis { return slices.Clone(c.nodes) }

// Close stops every node and removes their temporary directories. Closing
// a closed cluster does nothing.
func (c *RedisCluster) Close() error {
	var errs []error
	for _, node := range c.nodes {
		errs = append(errs, node.Close())
	}
	return errors.Join(errs...)
}

// sharedRedisCluster is the cluster [RedisClusterURL] starts; [Main] stops
// it.
var sharedRedisCluster = shared{
	env: RedisClusterURLEnv,
	pkg: "redis-server",
	start: func() (io.Closer, string, error) {
		c, err := StartRedisCluster(RedisClusterOptions{})
		if err != nil {
			return nil, "", err
		}
		return c, c.URL(), nil
	},
}

// RedisClusterURL returns the URL of a Redis Cluster for tests, for
// redis.ParseClusterURL: the value of PGFLIGHT_TEST_REDIS_CLUSTER_URL if
// it is set, or else that of a three-master cluster that the first call
// starts and that [Main] stops after the tests. The first call then sets
// PGFLIGHT_TEST_REDIS_CLUSTER_URL for child processes, as [PostgresURL]
// does.
//
// If no cluster can be started, RedisClusterURL fails the test with
// tb.Fatalf and says which package to install; it never skips.
func RedisClusterURL(tb testing.TB) string {
	tb.Helper()
	return sharedRedisCluster.url(tb)
}
