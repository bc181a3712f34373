package testserver

import (
	"context"
	"strconv"
)

// Redis is a redis-server of its own, started by [StartRedis]: no
// persistence, no password, a free port on 127.0.0.1. Its lifecycle
// methods (Stop, Start, Kill, Pause, Resume, Close) are safe for concurrent
// use by multiple goroutines; each waits until the server has reached the
// state it names.
type Redis struct{ *daemon }

// StartRedis starts redis-server from PATH on a free port of 127.0.0.1,
// with persistence off (--save "" --appendonly no) in a fresh temporary
// directory, and returns once it answers PING. The caller must Close it.
func StartRedis() (*Redis, error) {
	d, err := startDaemon("redis-server", "redis-server", redisArgs, redisReady)
	if err != nil {
		return nil, err
	}
	return &Redis{d}, nil
}

// URL returns the server's URL, redis://127.0.0.1:PORT/0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// redisArgs returns the redis-server command line.
func redisArgs(port int, dir string) []string {
	return []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "",
	}
}

// redisReady reports whether the server answers PING.
func redisReady(ctx context.Context, addr string) error {
	return pingText(ctx, addr, "PING\r\n", "+PONG")
}
