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

// daemon is a server that runs as one process from a temporary directory
// on a free port of 127.0.0.1, stops on SIGTERM and keeps no data: the
// lifecycle that [Redis] and [Memcached] share by embedding it.
//
// Its methods are safe for concurrent use by multiple goroutines; each
// waits until the server has reached the state it names.
type daemon struct {
	name  string                                       // the binary, for errors
	args  func(port int, dir string) []string          // its command line
	ready func(ctx context.Context, addr string) error // whether it answers

	mu     sync.Mutex
	dir    string // temporary directory: working directory and NAME.log
	port   int
	proc   process
	closed bool
}

// startDaemon starts name from PATH (pkg is the Debian package that brings
// it) in a fresh temporary directory on a free port, and returns once it
// answers ready.
func startDaemon(name, pkg string, args func(port int, dir string) []string, ready func(ctx context.Context, addr string) error) (*daemon, error) {
	path, err := lookPath(name, pkg)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	dir, err := makeDir(name, nil)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	d := &daemon{
		name:  name,
		args:  args,
		ready: ready,
		dir:   dir,
		proc:  process{name: name, path: path, dir: dir, log: filepath.Join(dir, name+".log")},
	}
	err = withFreePort(func(port int) error {
		d.port = port
		return d.proc.start(d.args(port, dir), d.isReady)
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: start %s: %w", name, err)
	}
	return d, nil
}

func (d *daemon) isReady(ctx context.Context) error { return d.ready(ctx, d.Addr()) }

// Addr returns the server's address, 127.0.0.1:PORT.
func (d *daemon) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)) }

// Port returns the TCP port the server listens on. It stays the same
// across Stop and Start.
func (d *daemon) Port() int { return d.port }

// Stop shuts the server down with SIGTERM and returns once it has exited.
// Its data is lost. Stopping a stopped server does nothing.
func (d *daemon) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.proc.stop(syscall.SIGTERM, stopTimeout); err != nil {
		return fmt.Errorf("testserver: stop %s: %w", d.name, err)
	}
	return nil
}

// Start starts a stopped or killed server again, empty, on the same port,
// and returns once it answers.
func (d *daemon) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("testserver: start %s: %w", d.name, errClosed)
	}
	if err := d.proc.start(d.args(d.port, d.dir), d.isReady); err != nil {
		return fmt.Errorf("testserver: start %s: %w", d.name, err)
	}
	return nil
}

var errClosed = errors.New("closed")

// Kill sends SIGKILL to the server and returns once it is gone.
func (d *daemon) Kill() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.proc.kill(); err != nil {
		return fmt.Errorf("testserver: kill %s: %w", d.name, err)
	}
	return nil
}

// Pause freezes the server with SIGSTOP: connections stay open but
// nothing answers. It returns once the server is stopped.
func (d *daemon) Pause() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.proc.pause(); err != nil {
		return fmt.Errorf("testserver: pause %s: %w", d.name, err)
	}
	return nil
}

// Resume continues a paused server with SIGCONT.
func (d *daemon) Resume() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.proc.resume(); err != nil {
		return fmt.Errorf("testserver: resume %s: %w", d.name, err)
	}
	return nil
}

// Close stops the server and removes its temporary directory. Closing a
// closed server does nothing.
func (d *daemon) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.proc.stop(syscall.SIGTERM, stopTimeout)
	if rmErr := os.RemoveAll(d.dir); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("testserver: close %s: %w", d.name, err)
	}
	return nil
}
