package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if os.Getenv(workerEnv) != "" {
		err = runWorker(ctx, os.Stdin, os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the settings of a run, from the command line.
type options struct {
	quick                 bool
	runs                  int
	scenarios, contenders []string
	databaseURL, redisURL string
	out, svg              string
	procs, goroutines     int
	compute               time.Duration
	loopGoroutines        int
	zipfGoroutines        int
	expiryTTL             time.Duration
	expiryCompute         time.Duration
	expiryDuration        time.Duration
	expiryStale           time.Duration
	zipfKeys              int
	zipfS                 float64
	zipfCompute           time.Duration
	zipfDuration          time.Duration
	hitsDuration          time.Duration
	manyKeys              int
	manyCompute           time.Duration
	coldSmall, coldLarge  coldStart
	cpuProfile            string       // directory for the workers' CPU profiles
	pgPool                int          // MaxConns of the recipe's PostgreSQL pools (and pgflight's, unless pglockPool); 0: pgxpool's default
	pglockPool            int          // MaxConns of pgflight's pools, which only pglock uses; 0: as pgPool
	save, render          string       // write the results to, or render them from, a file
	check                 checkOptions // -checker: run the invalidation checker instead (checker.go)
	args                  []string     // the command line
	command               string       // the command line, for the report
}

// Where the servers are when nothing says otherwise.
const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// parseOptions parses the command line.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: cd bench && go run . [flags]

Measures pgflight against no protection, the Django recipe, singleflight,
sturdyc and redsync in worker processes on PostgreSQL and Redis, and writes
../BENCHMARKS.md and ../docs/bench-stampede.svg. Progress goes to stderr.

flags:
`)
		fs.PrintDefaults()
	}
	o := &options{}
	fs.BoolVar(&o.quick, "quick", false, "1 repetition, shorter loops and cold starts of half the keys: about a minute")
	fs.IntVar(&o.runs, "runs", 7, "repetitions of every scenario (-quick: 1)")
	scen := fs.String("scenarios", "stampede,crash,expiry,expiry-stale,zipf,hits,coldstart,manykeys",
		"comma-separated scenarios to run; coldstart is coldstart-small and coldstart-large")
	cont := fs.String("contenders", strings.Join(defaultContenders, ","), "comma-separated contenders to run")
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL `URL` (default: DATABASE_URL, else "+defaultDatabaseURL+")")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis `URL` (default: REDIS_URL, else "+defaultRedisURL+")")
	fs.StringVar(&o.out, "out", "../BENCHMARKS.md", "the report to write")
	fs.StringVar(&o.svg, "svg", "../docs/bench-stampede.svg", "the chart to write; the report links it relative to -out")
	fs.IntVar(&o.procs, "procs", 8, "worker processes")
	fs.IntVar(&o.goroutines, "goroutines", 100, "goroutines per process in stampede and crash")
	fs.DurationVar(&o.compute, "compute", 100*time.Millisecond, "computation time in stampede and crash")
	fs.IntVar(&o.loopGoroutines, "loop-goroutines", 8, "goroutines per process in expiry and hits")
	fs.IntVar(&o.zipfGoroutines, "zipf-goroutines", 25, "goroutines per process in zipf")
	fs.DurationVar(&o.expiryTTL, "expiry-ttl", 200*time.Millisecond, "TTL of the hot key in expiry")
	fs.DurationVar(&o.expiryCompute, "expiry-compute", 10*time.Millisecond, "computation time in expiry")
	fs.DurationVar(&o.expiryDuration, "expiry-duration", 2*time.Second, "length of an expiry and an expiry-stale run (-quick: 1s)")
	fs.DurationVar(&o.expiryStale, "expiry-stale", 2*time.Second, "how long pgflight serves the hot key stale in expiry-stale (Config.StaleTTL)")
	fs.IntVar(&o.zipfKeys, "keys", 1000, "keys in zipf and hits")
	fs.Float64Var(&o.zipfS, "zipf-s", 1.1, "Zipf exponent s (> 1) in zipf")
	fs.DurationVar(&o.zipfCompute, "zipf-compute", 10*time.Millisecond, "computation time in zipf")
	fs.DurationVar(&o.zipfDuration, "zipf-duration", 2500*time.Millisecond, "length of a zipf run (-quick: 1.25s)")
	fs.DurationVar(&o.hitsDuration, "hits-duration", 1500*time.Millisecond, "length of a hits run (-quick: 0.75s)")
	fs.IntVar(&o.manyKeys, "many-keys", 10_000, "distinct keys missed at once by one process in manykeys")
	fs.DurationVar(&o.manyCompute, "many-compute", 50*time.Millisecond, "computation time in manykeys")
	fs.IntVar(&o.coldSmall.goroutines, "cold-small-goroutines", 25, "goroutines per process in coldstart-small")
	fs.IntVar(&o.coldSmall.keys, "cold-small-keys", 1000, "keys every process asks for in coldstart-small (-quick: 500)")
	fs.DurationVar(&o.coldSmall.compute, "cold-small-compute", 50*time.Millisecond, "computation time in coldstart-small")
	fs.IntVar(&o.coldLarge.goroutines, "cold-large-goroutines", 200, "goroutines per process in coldstart-large")
	fs.IntVar(&o.coldLarge.keys, "cold-large-keys", 10_000, "keys every process asks for in coldstart-large (-quick: 5,000)")
	fs.DurationVar(&o.coldLarge.compute, "cold-large-compute", 20*time.Millisecond, "computation time in coldstart-large")
	fs.IntVar(&o.pgPool, "pg-pool", 0, "connections of each process's PostgreSQL pool for the recipe (and pgflight, unless -pglock-pool); 0: pgxpool's default, max(4, NumCPU)")
	fs.IntVar(&o.pglockPool, "pglock-pool", 0, "connections of each process's PostgreSQL pool for pgflight, which only pglock uses (the cap of transaction mode is half of them); 0: as -pg-pool, pgxpool's default unless set, as a new user has it")
	fs.StringVar(&o.save, "save", "", "also save the results to `file`, for -render")
	fs.StringVar(&o.render, "render", "", "measure nothing: write the report and the chart from the results saved in `file`")
	fs.BoolVar(&o.check.enabled, "checker", false, "run the invalidation checker (issue 10, item 5) instead of the scenarios, once in each -checker-configs, and write its report section to -checker-out")
	fs.DurationVar(&o.check.duration, "checker-duration", 60*time.Second, "length of a checker run")
	fs.IntVar(&o.check.rows, "checker-rows", 50, "rows the checker's writers update")
	fs.IntVar(&o.check.readers, "checker-readers", 4, "reader processes of the checker")
	fs.IntVar(&o.check.goroutines, "checker-goroutines", 4, "goroutines per checker reader")
	fs.IntVar(&o.check.writers, "checker-writers", 2, "writer goroutines of the checker")
	fs.DurationVar(&o.check.writePause, "checker-write-pause", 10*time.Millisecond, "pause of a checker writer after each COMMIT")
	fs.DurationVar(&o.check.readPause, "checker-read-pause", time.Millisecond, "pause of a checker reader goroutine after each read")
	fs.DurationVar(&o.check.bound, "checker-bound", 100*time.Millisecond, "the checker also counts the violations whose value had been superseded for longer than this")
	fs.StringVar(&o.check.mode, "checker-mode", "keys", "the checker's invalidation method (keys: pglock.Invalidate; tags: pglock.InvalidateTags and WithTags; tags+consistent: also WithConsistentRead)")
	checkCfgs := fs.String("checker-configs", strings.Join(checkConfigs, ","), "comma-separated configurations of the checker: shared (Redis and pglock), local (the same with the local tier)")
	fs.StringVar(&o.check.out, "checker-out", "", "the file the checker's report section goes to (default: stdout)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of every worker into `dir` (for investigation; it slows the workers)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		for name, short := range map[string]*time.Duration{"expiry-duration": &o.expiryDuration,
			"zipf-duration": &o.zipfDuration, "hits-duration": &o.hitsDuration} {
			if !set[name] {
				*short /= 2
			}
		}
		for name, keys := range map[string]*int{"cold-small-keys": &o.coldSmall.keys, "cold-large-keys": &o.coldLarge.keys} {
			if !set[name] {
				*keys /= 2
			}
		}
		if !set["runs"] {
			o.runs = 1
		}
	}
	o.contenders = splitList(*cont)
	if err := checkContenders(o.contenders); err != nil {
		return nil, err
	}
	if o.expiryStale < 0 || o.pgPool < 0 || o.pglockPool < 0 {
		return nil, errors.New("-expiry-stale, -pg-pool and -pglock-pool must not be negative")
	}
	if o.runs < 1 || o.procs < 1 || o.goroutines < 1 || o.loopGoroutines < 1 || o.zipfGoroutines < 1 || o.zipfKeys < 1 || o.zipfS <= 1 {
		return nil, errors.New("-runs, -procs, -goroutines, -loop-goroutines, -zipf-goroutines and -keys must be at least 1, and -zipf-s above 1")
	}
	if min(o.coldSmall.goroutines, o.coldSmall.keys, o.coldLarge.goroutines, o.coldLarge.keys) < 1 {
		return nil, errors.New("-cold-small-goroutines, -cold-small-keys, -cold-large-goroutines and -cold-large-keys must be at least 1")
	}
	o.check.configs = splitList(*checkCfgs)
	if err := o.check.check(); err != nil {
		return nil, err
	}
	var err error
	if o.scenarios, err = selectScenarios(splitList(*scen), scenarios(o)); err != nil {
		return nil, err
	}
	o.databaseURL = firstOf(o.databaseURL, os.Getenv("DATABASE_URL"), defaultDatabaseURL)
	o.redisURL = firstOf(o.redisURL, os.Getenv("REDIS_URL"), defaultRedisURL)
	o.args = args
	o.command = strings.TrimSpace("cd bench && go run . " + strings.Join(commandArgs(args), " "))
	return o, nil
}

// run is the parent: it runs the scenarios and writes the report.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.check.enabled {
		return runCheckerMode(ctx, o, stderr)
	}
	if o.render != "" {
		s, err := loadSuite(o.render, o)
		if err != nil {
			return err
		}
		return s.write()
	}
	s, err := newSuite(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.run(ctx); err != nil {
		return err
	}
	if o.save != "" {
		if err := s.save(o.save); err != nil {
			return err
		}
	}
	return s.write()
}

// commandArgs returns args without the flags that choose where results go,
// which do not change what is measured.
func commandArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch name {
		case "save", "render", "out", "svg", "checker-out":
			if !hasValue {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// selectScenarios returns the names of the scenarios of all that names
// selects, by name or by group, or an error for a name that selects none.
func selectScenarios(names []string, all []*scenario) ([]string, error) {
	var out []string
	for _, n := range names {
		found := false
		for _, sc := range all {
			if sc.name == n || sc.group == n {
				found = true
				if !slices.Contains(out, sc.name) {
					out = append(out, sc.name)
				}
			}
		}
		if !found {
			var valid []string
			for _, sc := range all {
				valid = append(valid, sc.name)
				if sc.group != "" && !slices.Contains(valid, sc.group) {
					valid = append(valid, sc.group)
				}
			}
			return nil, fmt.Errorf("unknown scenario %q (want one of %v)", n, valid)
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
