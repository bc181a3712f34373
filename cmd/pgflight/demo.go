package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// demoFlags are the settings of one demo run.
type demoFlags struct {
	procs, goroutines int
	compute           time.Duration
	coldKeys          int // 0: no cold start
	coldCompute       time.Duration
	pg                pgTarget
	redis             redisTarget
}

// runDemo is "pgflight demo": worker processes that all ask for one cold
// key at once, in three modes (no coordination, in-process coalescing,
// pgflight on PostgreSQL), and a table of what each mode cost; then a cold
// start, the same processes each wanting every one of many keys, in the
// same three modes, and its table. Without PostgreSQL or Redis it says so
// and compares no coordination with the embedded default on one key inside
// this process.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: pgflight demo [flags]

Starts worker processes that all ask for the same cold key at once, each from
many goroutines, and compares three modes, each on a fresh key:
  none      cache-aside on Redis (GET; on a miss compute, then SET), no coordination
  local     pgflight on Redis with its in-process locker: coalescing inside each process
  pgflight  pgflight on Redis with PostgreSQL advisory locks (pglock.New on a
            default pgxpool): one computation for the fleet
Then a cold start in the same three modes: every process wants each of
-cold-keys fresh keys once, at about the same moment, its goroutines sharing
the walk in an order of the process's own.
If PostgreSQL or Redis is unreachable, it compares "none" with the embedded
default (in-process cache and locker) on one key inside this one process instead.

flags:
`)
		fs.PrintDefaults()
	}
	procs := fs.Int("procs", 8, "worker processes")
	goroutines := fs.Int("goroutines", 100, "goroutines per process, each calling once for the key")
	compute := fs.Duration("compute", 100*time.Millisecond, "how long computing the value takes")
	coldKeys := fs.Int("cold-keys", 200, "keys of the cold start; 0 skips it")
	coldCompute := fs.Duration("cold-compute", 50*time.Millisecond, "how long computing one key of the cold start takes")
	databaseURL := fs.String("database-url", "", "PostgreSQL `URL` (default: DATABASE_URL, else the PG* variables, else "+defaultDatabaseURL+")")
	redisURL := fs.String("redis-url", "", "Redis `URL` (default: REDIS_URL, else "+defaultRedisURL+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *procs < 1 || *goroutines < 1 || *compute < 0 || *coldKeys < 0 || *coldCompute < 0 {
		fs.Usage()
		return errors.New("demo: -procs and -goroutines must be at least 1, and -compute, -cold-keys and -cold-compute not negative")
	}
	d := demoFlags{*procs, *goroutines, *compute, *coldKeys, *coldCompute, resolvePostgres(*databaseURL), resolveRedis(*redisURL)}

	runID := newRunID()
	app := "pgflight-demo-" + runID
	redisErr := make(chan error, 1)
	go func() { redisErr <- probeRedis(ctx, d.redis) }()
	monitor, pgErr := probePostgres(ctx, d.pg, app+"-monitor")
	if monitor != nil {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
			defer cancel()
			monitor.Close(cctx)
		}()
	}
	rErr := <-redisErr
	if err := ctx.Err(); err != nil {
		return err
	}
	if pgErr != nil || rErr != nil {
		if pgErr != nil {
			fmt.Fprintf(stdout, "PostgreSQL is not reachable at %s (%s): %s\n", d.pg, d.pg.source, oneLine(pgErr))
		}
		if rErr != nil {
			fmt.Fprintf(stdout, "Redis is not reachable at %s (%s): %s\n", d.redis, d.redis.source, oneLine(rErr))
		}
		return demoInProcess(ctx, d, stdout)
	}
	return demoFleet(ctx, d, app, monitor, stdout, stderr)
}

// demoFleet is the demo proper: each mode in turn in d.procs worker
// processes, whose PostgreSQL sessions, named app, monitor counts.
func demoFleet(ctx context.Context, d demoFlags, app string, monitor *pgx.Conn, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find this binary to start workers: %w", err)
	}
	if _, ok := stderr.(*os.File); !ok {
		stderr = &lockedWriter{w: stderr} // written by every worker's copier
	}
	f := &fleet{exe: exe, procs: d.procs, goroutines: d.goroutines, compute: d.compute,
		pg: d.pg, redis: d.redis, app: app, monitor: monitor, stderr: stderr,
		ready: readyTimeout, slack: runSlack}

	fmt.Fprintf(stdout, "pgflight demo: %d processes x %d goroutines ask for one cold key at once; computing it takes %v; PostgreSQL %s; Redis %s\n",
		d.procs, d.goroutines, d.compute, d.pg, d.redis)
	fmt.Fprintln(stdout, "modes: none = cache-aside on Redis, no coordination; local = pgflight, Redis + in-process locker; pgflight = pgflight, Redis + PostgreSQL advisory locks")
	var results []*modeResult
	for _, mode := range []string{modeNone, modeLocal, modePgflight} {
		res, err := f.run(ctx, mode, app+"-"+mode)
		if err != nil {
			return fmt.Errorf("demo: mode %s: %w", mode, err)
		}
		results = append(results, res)
	}
	fmt.Fprintln(stdout)
	printTable(stdout, results)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, conclusion(results, d.procs))
	printNotes(stdout, "", results)
	if d.coldKeys == 0 {
		return nil
	}

	cold := *f
	cold.keys, cold.compute = d.coldKeys, d.coldCompute
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "cold start: each of the %d processes wants each of %d fresh keys once, at about the same moment; its %d goroutines share the walk, in an order of the process's own; computing a key takes %v\n",
		d.procs, d.coldKeys, d.goroutines, d.coldCompute)
	results = nil
	for _, mode := range []string{modeNone, modeLocal, modePgflight} {
		res, err := cold.run(ctx, mode, app+"-cold-"+mode)
		if err != nil {
			return fmt.Errorf("demo: cold start, mode %s: %w", mode, err)
		}
		results = append(results, res)
	}
	fmt.Fprintln(stdout)
	printColdTable(stdout, results, d.coldKeys)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, coldConclusion(results, d.coldKeys))
	printNotes(stdout, "cold start, ", results)
	return nil
}

// demoInProcess is the demo without servers: the same number of calls, all
// in this process, with no coordination and with the embedded default.
func demoInProcess(ctx context.Context, d demoFlags, stdout io.Writer) error {
	n := d.procs * d.goroutines
	fmt.Fprintln(stdout, "falling back to the embedded default, pgflight.New(pgflight.Config{}): an in-process memory cache and locker, which coordinate ONE process")
	fmt.Fprintf(stdout, "pgflight demo (one process): %d goroutines (%d x %d) ask for one cold key at once; computing it takes %v\n",
		n, d.procs, d.goroutines, d.compute)
	fmt.Fprintln(stdout, "modes: none = cache-aside on an in-process map, no coordination; pgflight = the embedded default")
	var results []*modeResult
	for _, mode := range []string{modeNone, modePgflight} {
		res, err := runInProcess(ctx, mode, n, d.compute)
		if err != nil {
			return fmt.Errorf("demo: mode %s: %w", mode, err)
		}
		results = append(results, res)
	}
	fmt.Fprintln(stdout)
	printTable(stdout, results)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, fallbackConclusion(results))
	printNotes(stdout, "", results)
	return nil
}

// probePostgres connects to t as app within probeTimeout and checks that
// the session can count sessions in pg_stat_activity. It returns the
// connection, which the demo keeps for sampling.
func probePostgres(ctx context.Context, t pgTarget, app string) (*pgx.Conn, error) {
	conn, err := t.connect(ctx, app)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var n int
	if err := conn.QueryRow(pctx, countSQL, app).Scan(&n); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		conn.Close(cctx)
		return nil, err
	}
	return conn, nil
}

// newRunID returns a random id that names one demo run: its sessions'
// application_name and its namespaces.
func newRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
