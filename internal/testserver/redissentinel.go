package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// RedisSentinel is a Redis Sentinel of its own, started by
// [StartRedisSentinel]: redis-server in sentinel mode on a free port of
// 127.0.0.1, watching one master. Its lifecycle methods are those of
// [Redis], and are safe for concurrent use by multiple goroutines.
type RedisSentinel struct {
	*daemon
	master string
}

// StartRedisSentinel starts a sentinel from PATH (redis-server --sentinel)
// that monitors master under the name masterName, with a quorum of one,
// and returns once it answers PING. Clients find the master through it
// with redis.NewFailoverClient. The caller must Close it, and master.
func StartRedisSentinel(master *Redis, masterName string) (*RedisSentinel, error) {
	const name = "redis-server"
	path, err := lookPath(name, "redis-server")
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	dir, err := makeDir("redis-sentinel", nil)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	// Sentinel rewrites its config file with what it learns, so the file
	// is its own, in its directory.
	conf := filepath.Join(dir, "sentinel.conf")
	monitor := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", masterName, master.Port())
	if err := os.WriteFile(conf, []byte(monitor), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: %w", err)
	}
	d := &daemon{
		name:  name,
		ready: redisReady,
		dir:   dir,
		proc:  process{name: name, path: path, dir: dir, log: filepath.Join(dir, "redis-sentinel.log")},
		args: func(port int, dir string) []string {
			return []string{
				conf, "--sentinel",
				"--bind", "127.0.0.1",
				"--port", strconv.Itoa(port),
				"--dir", dir,
				"--daemonize", "no",
				"--logfile", "",
			}
		},
	}
	err = withFreePort(func(port int) error {
		d.port = port
		return d.proc.start(d.args(port, dir), d.isReady)
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: start redis sentinel: %w", err)
	}
	return &RedisSentinel{d, masterName}, nil
}

// MasterName returns the name under which the sentinel monitors its
// master, for redis.FailoverOptions.MasterName.
func (s *RedisSentinel) MasterName() string { return s.master }
