package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// workerCommand is the hidden command that the demo re-executes its own
// binary with, once per worker process.
const workerCommand = "worker"

// The environment of a worker process. The connection strings travel here
// rather than on the command line, where any user of the machine could read
// a password in the process list.
const (
	workerEnv         = "PGFLIGHT_DEMO_WORKER"       // "1": a test binary runs main instead of its tests
	workerDatabaseEnv = "PGFLIGHT_DEMO_DATABASE_URL" // "" means the PG* variables
	workerRedisEnv    = "PGFLIGHT_DEMO_REDIS_URL"
)

// demoTTL is how long the demo's values stay in Redis: long enough for the
// run, short enough to leave nothing behind for long.
const demoTTL = time.Minute

// A workerReport is what a worker writes on stdout, as one JSON line, when
// its calls have returned.
type workerReport struct {
	PID          int             `json:"pid"`
	Calls        int             `json:"calls"`
	Computations int64           `json:"computations"`
	Errors       int             `json:"errors"`
	FirstError   string          `json:"first_error,omitempty"`
	FailOpens    uint64          `json:"fail_opens"`
	Latencies    []time.Duration `json:"latencies_ns"` // per call, from the barrier's release
}

// runWorker is one process of the demo's fleet. It connects, says "ready"
// on stdout, waits for a line on stdin (the barrier), runs its goroutines,
// each calling once for the key (or with -keys, all walking the cold
// start's keys together, each key once), closes everything it opened, and
// reports.
func runWorker(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(workerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", modePgflight, "none, local or pgflight")
	namespace := fs.String("namespace", "pgflight-demo", "pgflight namespace, or Redis key prefix in mode none")
	key := fs.String("key", "report", "the key every goroutine asks for")
	keys := fs.Int("keys", 0, "if positive, the goroutines instead walk this many keys together, in an order of this process's own, asking for each once")
	app := fs.String("app", "pgflight-demo", "application_name of the PostgreSQL sessions")
	goroutines := fs.Int("goroutines", 100, "goroutines, each calling once")
	compute := fs.Duration("compute", 100*time.Millisecond, "how long a computation takes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	// go-redis logs through a logger of its package, to os.Stderr; send
	// it to stderr, which run scrubs like the rest. A worker is a process
	// of its own, so changing that logger changes nothing else.
	redis.SetLogger(printfLogger{log.New(stderr, "", log.LstdFlags)})
	c, err := dial(ctx, *mode, *namespace, *app, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	counter := &computeCounter{d: *compute}
	rep, err := c.runCalls(ctx, *key, *keys, *goroutines, counter, stdin, stdout)
	if cerr := c.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// A demoClient is a worker's connections for one mode.
type demoClient struct {
	namespace string
	rdb       *redis.Client
	pool      *pgxpool.Pool   // mode pgflight only
	g         *pgflight.Group // modes local and pgflight
}

// dial connects to Redis, and in mode pgflight to PostgreSQL, each once, so
// that the calls find a warm connection as in a running service. The Group
// logs its warnings to logger.
func dial(ctx context.Context, mode, namespace, app string, logger *slog.Logger) (_ *demoClient, err error) {
	c := &demoClient{namespace: namespace}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	rt := redisTarget{os.Getenv(workerRedisEnv), workerRedisEnv}
	if c.rdb, err = rt.client(); err != nil {
		return nil, err
	}
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	cfg := pgflight.Config{Cache: redisstore.New(c.rdb), Namespace: namespace, TTL: demoTTL, Logger: logger}
	switch mode {
	case modeNone:
		return c, nil
	case modeLocal:
		// Config.Locker nil: the in-process locker.
	case modePgflight:
		pcfg, err := pgTarget{os.Getenv(workerDatabaseEnv), workerDatabaseEnv}.poolConfig(app)
		if err != nil {
			return nil, err
		}
		if c.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		if err := c.pool.Ping(ctx); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		cfg.Locker = pglock.New(c.pool)
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	if c.g, err = pgflight.New(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// call gets key's value once: through pgflight, or in mode none by plain
// cache-aside on Redis (GET; on a miss compute, then SET) with no
// coordination at all.
func (c *demoClient) call(ctx context.Context, key string, cc *computeCounter) (string, error) {
	if c.g != nil {
		return pgflight.Fetch(ctx, c.g, key, cc.compute)
	}
	rkey := c.namespace + ":" + key
	v, err := c.rdb.Get(ctx, rkey).Result()
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", err
	}
	if v, err = cc.compute(ctx); err != nil {
		return "", err
	}
	return v, c.rdb.Set(ctx, rkey, v, demoTTL).Err()
}

// runCalls starts n goroutines that wait at a barrier, says "ready" on
// stdout, waits for a line on stdin, releases the goroutines, each calling
// once for key, or if keys > 0 all walking keys keys together, and reports
// when all have returned.
func (c *demoClient) runCalls(ctx context.Context, key string, keys, n int, cc *computeCounter, stdin io.Reader, stdout io.Writer) (workerReport, error) {
	barrier := func() error {
		if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
			return err
		}
		if err := waitLine(ctx, stdin); err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
		return nil
	}
	call := func(key string) error {
		_, err := c.call(ctx, key, cc)
		return err
	}
	var lat []time.Duration
	var errs []error
	var err error
	if keys > 0 {
		lat, errs, err = walkTogether(n, keys, barrier, call)
	} else {
		lat, errs, err = callTogether(n, barrier, func() error { return call(key) })
	}
	if err != nil {
		return workerReport{}, err
	}
	rep := newReport(lat, errs, cc.n.Load())
	if c.g != nil {
		rep.FailOpens = c.g.Stats().FailOpens
	}
	return rep, nil
}

// waitLine returns when r yields a line, or with an error when r ends
// first or ctx ends.
func waitLine(ctx context.Context, r io.Reader) error {
	done := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(r).ReadString('\n')
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close closes the Group, the pool and the Redis client.
func (c *demoClient) close() error {
	var err error
	if c.g != nil {
		err = c.g.Close()
	}
	if c.pool != nil {
		c.pool.Close()
	}
	if c.rdb != nil {
		err = errors.Join(err, c.rdb.Close())
	}
	return err
}

// A printfLogger is a log.Logger as go-redis wants its logger.
type printfLogger struct{ l *log.Logger }

// Printf logs one line.
func (p printfLogger) Printf(_ context.Context, format string, v ...any) { p.l.Printf(format, v...) }
