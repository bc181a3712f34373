package testserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PgBouncer is a PgBouncer of its own in front of a [Postgres], started by
// [StartPgBouncer]: every database of the upstream server, user postgres
// without a password, on a free port of 127.0.0.1.
//
// Its methods are safe for concurrent use by multiple goroutines; each
// waits until the pooler has reached the state it names.
type PgBouncer struct {
	mu       sync.Mutex
	dir      string // temporary directory: pgbouncer.ini, userlist.txt, pgbouncer.log
	port     int
	upstream int // the upstream server's port
	mode     string
	proc     process
	closed   bool
}

// StartPgBouncer starts pgbouncer from PATH or /usr/sbin in front of
// upstream, with pool_mode mode ("session", "transaction" or "statement"),
// and returns once it accepts connections. The caller must Close it before
// upstream. Run as root, it runs as the postgres user, because pgbouncer
// refuses to run as root.
//
// The pooler retries logins to upstream every second (server_login_retry),
// so that it follows an upstream restart quickly.
func StartPgBouncer(upstream *Postgres, mode string) (*PgBouncer, error) {
	switch mode {
	case "session", "transaction", "statement":
	default:
		return nil, fmt.Errorf("testserver: start pgbouncer: pool mode %q, want session, transaction or statement", mode)
	}
	path, err := lookPath("pgbouncer", "pgbouncer")
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	dir, err := makeDir("pgbouncer", cred)
	if err != nil {
		return nil, fmt.Errorf("testserver: %w", err)
	}
	b := &PgBouncer{
		dir:      dir,
		upstream: upstream.Port(),
		mode:     mode,
		proc: process{
			name: "pgbouncer",
			path: path,
			dir:  dir,
			log:  filepath.Join(dir, "pgbouncer.log"),
			cred: cred,
		},
	}
	err = os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(`"postgres" ""`+"\n"), 0o644)
	if err == nil {
		err = withFreePort(func(port int) error {
			b.port = port
			if err := b.writeConfig(); err != nil {
				return err
			}
			return b.proc.start(b.args(), b.ready)
		})
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testserver: start pgbouncer: %w", err)
	}
	return b, nil
}

// URL returns the pooler's connection string for the database postgres,
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func (b *PgBouncer) URL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(b.port) + "/postgres?sslmode=disable"
}

// Port returns the TCP port the pooler listens on. It stays the same
// across Stop and Start.
func (b *PgBouncer) Port() int { return b.port }

// Stop shuts the pooler down at once, with SHUTDOWN on its admin console,
// and returns once it has exited. Clients see their connections drop.
// Stopping a stopped pooler does nothing.
func (b *PgBouncer) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.proc.stopWith(b.shutdown, stopTimeout); err != nil {
		return fmt.Errorf("testserver: stop pgbouncer: %w", err)
	}
	return nil
}

// Start starts a stopped or killed pooler again on the same port, and
// returns once it accepts connections.
func (b *PgBouncer) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("testserver: start pgbouncer: closed")
	}
	if err := b.proc.start(b.args(), b.ready); err != nil {
		return fmt.Errorf("testserver: start pgbouncer: %w", err)
	}
	return nil
}

// Kill sends SIGKILL to the pooler and returns once it is gone.
func (b *PgBouncer) Kill() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.proc.kill(); err != nil {
		return fmt.Errorf("testserver: kill pgbouncer: %w", err)
	}
	return nil
}

// Pause freezes the pooler with SIGSTOP: connections stay open but nothing
// answers. It returns once the pooler is stopped. (This is not PgBouncer's
// own PAUSE command.)
func (b *PgBouncer) Pause() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.proc.pause(); err != nil {
		return fmt.Errorf("testserver: pause pgbouncer: %w", err)
	}
	return nil
}

// Resume continues a paused pooler with SIGCONT.
func (b *PgBouncer) Resume() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.proc.resume(); err != nil {
		return fmt.Errorf("testserver: resume pgbouncer: %w", err)
	}
	return nil
}

// Close stops the pooler and removes its temporary directory. Closing a
// closed pooler does nothing.
func (b *PgBouncer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.proc.stopWith(b.shutdown, stopTimeout)
	if rmErr := os.RemoveAll(b.dir); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("testserver: close pgbouncer: %w", err)
	}
	return nil
}

// configFormat is pgbouncer.ini. The wildcard database sends every database
// name to the upstream server. The console's SHUTDOWN stops at once in
// every version, whereas the meaning of SIGTERM changed in 1.23.
const configFormat = `[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = postgres
pool_mode = %s
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
server_login_retry = 1
server_connect_timeout = 5
`

func (b *PgBouncer) writeConfig() error {
	config := fmt.Sprintf(configFormat, b.upstream, b.port, filepath.Join(b.dir, "userlist.txt"), b.mode)
	return os.WriteFile(b.configPath(), []byte(config), 0o644)
}

func (b *PgBouncer) configPath() string { return filepath.Join(b.dir, "pgbouncer.ini") }

// args returns the pgbouncer command line.
func (b *PgBouncer) args() []string { return []string{b.configPath()} }

// adminURL returns the connection string of the admin console.
func (b *PgBouncer) adminURL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(b.port) + "/pgbouncer?sslmode=disable"
}

// ready reports whether the admin console accepts a connection, which
// does not depend on the upstream server.
func (b *PgBouncer) ready(ctx context.Context) error {
	conn, err := pgconn.Connect(ctx, b.adminURL())
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// shutdown asks the pooler to exit at once, or kills it if its console
// does not answer. The pooler drops the connection as it goes, so the reply
// is an error either way; whether it worked shows in whether it exits.
func (b *PgBouncer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, b.adminURL())
	if err != nil {
		return b.proc.kill()
	}
	conn.Exec(ctx, "SHUTDOWN").ReadAll()
	conn.Close(ctx)
	return nil
}
