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

// Memcached is a memcached of its own, started by [StartMemcached]: TCP
// only, on a free port of 127.0.0.1.
//
// Its methods are safe for concurrent use by multiple goroutines; each
// waits until the server has reached the state it names.
type Memcached struct {
	mu     sync.Mutex
	dir    string // temporary directory: working directory and memcached.log
	port   int
	proc   process
	closed bool
}

// StartMemcached starts memcached from PATH on a free port of 127.0.0.1
// (memcached -l 127.0.0.1 -p PORT -U 0) and returns once it answers. The
// caller must Close it.
func StartMemcached() (*Memcached, error) {
	path, err := lookPath("memcached", "memcached")
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	dir, err := makeDir("memcached", nil)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	m := &Memcached{
		dir: dir,
		proc: process{
			name: "memcached",
			path: path,
			dir:  dir,
			log:  filepath.Join(dir, "memcached.log"),
		},
	}
	err = withFreePort(func(port int) error {
		m.port = port
		return m.proc.start(m.args(), m.ready)
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: start memcached: %w", err)
	}
	return m, nil
}

// Addr returns the server's address, 127.0.0.1:PORT.
func (m *Memcached) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// Port returns the TCP port the server listens on. It stays the same
// across Stop and Start.
func (m *Memcached) Port() int { return m.port }

// Stop shuts the server down with SIGTERM and returns once it has exited.
// Its data is lost. Stopping a stopped server does nothing.
func (m *Memcached) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.proc.stop(syscall.SIGTERM, stopTimeout); err != nil {
		return fmt.Errorf("testserver: stop memcached: %w", err)
	}
	return nil
}

// Start starts a stopped or killed server again, empty, on the same port,
// and returns once it answers.
func (m *Memcached) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("testserver: start memcached: closed")
	}
	if err := m.proc.start(m.args(), m.ready); err != nil {
		return fmt.Errorf("testserver: start memcached: %w", err)
	}
	return nil
}

// Kill sends SIGKILL to the server and returns once it is gone.
func (m *Memcached) Kill() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.proc.kill(); err != nil {
		return fmt.Errorf("testserver: kill memcached: %w", err)
	}
	return nil
}

// Pause freezes the server with SIGSTOP: connections stay open but
// nothing answers. It returns once the server is stopped.
func (m *Memcached) Pause() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.proc.pause(); err != nil {
		return fmt.Errorf("testserver: pause memcached: %w", err)
	}
	return nil
}

// Resume continues a paused server with SIGCONT.
func (m *Memcached) Resume() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.proc.resume(); err != nil {
		return fmt.Errorf("testserver: resume memcached: %w", err)
	}
	return nil
}

// Close stops the server and removes its temporary directory. Closing a
// closed server does nothing.
func (m *Memcached) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.proc.stop(syscall.SIGTERM, stopTimeout)
	if rmErr := os.RemoveAll(m.dir); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("testserver: close memcached: %w", err)
	}
	return nil
}

// args returns the memcached command line. memcached refuses root unless
// told which user to run as, so root names itself.
func (m *Memcached) args() []string {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(m.port), "-U", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return args
}

// ready reports whether the server answers the version command.
func (m *Memcached) ready(ctx context.Context) error {
	return pingText(ctx, m.Addr(), "version\r\n", "VERSION ")
}
