package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// Redis is a redis-server of its own, started by [StartRedis]: no
// persistence, no password, a free port on 127.0.0.1.
//
// Its methods are safe for concurrent use by multiple goroutines; each
// waits until the server has reached the state it names.
type Redis struct {
	mu     sync.Mutex
	dir    string // temporary directory: working directory and redis.log
	port   int
	proc   process
	closed bool
}

// StartRedis starts redis-server from PATH on a free port of 127.0.0.1,
// with persistence off (--save "" --appendonly no) in a fresh temporary
// directory, and returns once it answers PING. The caller must Close it.
func StartRedis() (*Redis, error) {
	path, err := lookPath("redis-server", "redis-server")
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	dir, err := makeDir("redis", nil)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	r := &Redis{
		dir: dir,
		proc: process{
			name: "redis-server",
			path: path,
			dir:  dir,
			log:  filepath.Join(dir, "redis.log"),
		},
	}
	err = withFreePort(func(port int) error {
		r.port = port
		return r.proc.start(r.args(), r.ready)
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: start redis: %w", err)
	}
	return r, nil
}

// URL returns the server's URL, redis://127.0.0.1:PORT/0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Addr returns the server's address, 127.0.0.1:PORT.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// Port returns the TCP port the server listens on. It stays the same
// across Stop and Start.
func (r *Redis) Port() int { return r.port }

// Stop shuts the server down with SIGTERM and returns once it has exited.
// Its data is lost. Stopping a stopped server does nothing.
func (r *Redis) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.proc.stop(syscall.SIGTERM, stopTimeout); err != nil {
		return fmt.Errorf("testserver: stop redis: %w", err)
	}
	return nil
}

// Start starts a stopped or killed server again, empty, on the same port,
// and returns once it answers PING.
func (r *Redis) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("testserver: start redis: closed")
	}
	if err := r.proc.start(r.args(), r.ready); err != nil {
		return fmt.Errorf("testserver: start redis: %w", err)
	}
	return nil
}

// Kill sends SIGKILL to the server and returns once it is gone.
func (r *Redis) Kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.proc.kill(); err != nil {
		return fmt.Errorf("testserver: kill redis: %w", err)
	}
	return nil
}

// Pause freezes the server with SIGSTOP: connections stay open but
// nothing answers. It returns once the server is stopped.
func (r *Redis) Pause() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.proc.pause(); err != nil {
		return fmt.Errorf("testserver: pause redis: %w", err)
	}
	return nil
}

// Resume continues a paused server with SIGCONT.
func (r *Redis) Resume() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.proc.resume(); err != nil {
		return fmt.Errorf("testserver: resume redis: %w", err)
	}
	return nil
}

// Close stops the server and removes its temporary directory. Closing a
// closed server does nothing.
func (r *Redis) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.proc.stop(syscall.SIGTERM, stopTimeout)
	if rmErr := os.RemoveAll(r.dir); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("testserver: close redis: %w", err)
	}
	return nil
}

// args returns the redis-server command line.
func (r *Redis) args() []string {
	return []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
}

// ready reports whether the server answers PING.
func (r *Redis) ready(ctx context.Context) error {
	return pingText(ctx, r.Addr(), "PING\r\n", "+PONG")
}
