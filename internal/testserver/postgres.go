package testserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresOptions configures [StartPostgres].
type PostgresOptions struct {
	// Settings are extra server settings, each passed as -c name=value,
	// for example {"max_connections": "20"}. They override the defaults
	// that StartPostgres sets.
	Settings map[string]string
}

// Postgres is a PostgreSQL server of its own, started by [StartPostgres]:
// a fresh data directory, trust authentication for the user postgres, and
// a free port on 127.0.0.1. Durability is switched off for speed.
//
// Its methods are safe for concurrent use by multiple goroutines; each
// waits until the server has reached the state it names.
type Postgres struct {
	mu       sync.Mutex
	dir      string // temporary directory: data/, the socket, postgres.log
	port     int
	settings map[string]string
	proc     process
	closed   bool
}

// StartPostgres runs initdb in a fresh temporary directory, starts postgres
// on a free port of 127.0.0.1 and returns once it accepts connections. The
// caller must Close it.
//
// The binaries come from PATH or else from the newest
// /usr/lib/postgresql/*/bin. Run as root, the server runs as the postgres
// user, because PostgreSQL refuses to run as root.
func StartPostgres(opts PostgresOptions) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	dir, err := makeDir("postgres", cred)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	p := &Postgres{
		dir:      dir,
		settings: maps.Clone(opts.Settings),
		proc: process{
			name: "postgres",
			path: filepath.Join(bin, "postgres"),
			dir:  dir,
			log:  filepath.Join(dir, "postgres.log"),
			cred: cred,
		},
	}
	err = p.initdb(filepath.Join(bin, "initdb"))
	if err == nil {
		err = withFreePort(func(port int) error {
			p.port = port
			return p.proc.start(p.args(), p.ready)
		})
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: start postgres: %w", err)
	}
	return p, nil
}

// URL returns the server's connection string,
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func (p *Postgres) URL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(p.port) + "/postgres?sslmode=disable"
}

// Port returns the TCP port the server listens on. It stays the same
// across Stop and Start.
func (p *Postgres) Port() int { return p.port }

// Stop shuts the server down as pg_ctl stop -m fast does: sessions are
// ended and open transactions rolled back. It returns once every server
// process has exited. The data and the port are kept for Start. Stopping a
// stopped server does nothing.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.proc.stop(syscall.SIGINT, stopTimeout); err != nil {
		return fmt.Errorf("testserver: stop postgres: %w", err)
	}
	return nil
}

// Start starts a stopped or killed server again on the same port and data,
// and returns once it accepts connections.
func (p *Postgres) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("testserver: start postgres: closed")
	}
	if err := p.proc.start(p.args(), p.ready); err != nil {
		return fmt.Errorf("testserver: start postgres: %w", err)
	}
	return nil
}

// Restart stops the server in mode "fast" (sessions ended, a clean
// shutdown) or "immediate" (processes quit at once; the next start runs
// crash recovery), then starts it again, and returns once it accepts
// connections.
func (p *Postgres) Restart(mode string) error {
	var sig syscall.Signal
	switch mode {
	case "fast":
		sig = syscall.SIGINT
	case "immediate":
		sig = syscall.SIGQUIT
	default:
		return fmt.Errorf("testserver: restart postgres: mode %q, want fast or immediate", mode)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("testserver: restart postgres: closed")
	}
	if err := p.proc.stop(sig, stopTimeout); err != nil {
		return fmt.Errorf("testserver: restart postgres: %w", err)
	}
	if err := p.proc.start(p.args(), p.ready); err != nil {
		return fmt.Errorf("testserver: restart postgres: %w", err)
	}
	return nil
}

// Kill sends SIGKILL to the postmaster and every backend and returns once
// they are gone, as if the machine had lost power. Clients see their
// connections drop. Start works afterwards and runs crash recovery.
func (p *Postgres) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.proc.kill(); err != nil {
		return fmt.Errorf("testserver: kill postgres: %w", err)
	}
	return nil
}

// Pause freezes the postmaster and every backend with SIGSTOP, as a hung
// machine would: connections stay open but nothing answers, and new
// connections are not accepted. It returns once all of them are stopped.
func (p *Postgres) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.proc.pause(); err != nil {
		return fmt.Errorf("testserver: pause postgres: %w", err)
	}
	return nil
}

// Resume continues a paused server with SIGCONT.
func (p *Postgres) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.proc.resume(); err != nil {
		return fmt.Errorf("testserver: resume postgres: %w", err)
	}
	return nil
}

// Close stops the server at once (immediate mode) and removes its
// temporary directory. Closing a closed server does nothing.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.proc.stop(syscall.SIGQUIT, stopTimeout)
	if rmErr := os.RemoveAll(p.dir); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("testserver: close postgres: %w", err)
	}
	return nil
}

// initdb creates the data directory.
func (p *Postgres) initdb(path string) error {
	log, err := os.Create(p.proc.log)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(path, "-D", p.dataDir(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = p.dir
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.proc.cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return &startError{fmt.Errorf("initdb: %w", err), tail(p.proc.log, 0)}
	}
	return nil
}

// args returns the postgres command line.
func (p *Postgres) args() []string {
	args := []string{
		"-D", p.dataDir(),
		"-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + p.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	}
	for _, name := range slices.Sorted(maps.Keys(p.settings)) {
		args = append(args, "-c", name+"="+p.settings[name])
	}
	return args
}

// ready reports whether the server accepts a connection.
func (p *Postgres) ready(ctx context.Context) error {
	conn, err := pgconn.Connect(ctx, p.URL())
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }
