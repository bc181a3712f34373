package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// A suite runs the scenarios against the contenders and keeps the results.
type suite struct {
	o       *options
	exe     string
	runID   string
	monitor *pgx.Conn     // samples the workers' sessions
	rdb     *redis.Client // samples the workers' clients and deletes their keys
	stderr  io.Writer
	machine machine

	// runs[scenario][contender] holds one metrics per repetition; nil for
	// a run that failed.
	runs map[string]map[string][]metrics
	// pairs[scenario][pairName] holds one pairRun per repetition.
	pairs  map[string]map[string][]pairRun
	notes  []string // errors and failures worth a line in the report
	took   time.Duration
	fleets int // fleets started, which number their application names
}

// newSuite connects to the servers and describes the machine.
func newSuite(ctx context.Context, o *options, stderr io.Writer) (*suite, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary to start workers: %w", err)
	}
	var b [4]byte
	rand.Read(b[:])
	s := &suite{o: o, exe: exe, runID: hex.EncodeToString(b[:]), stderr: stderr,
		runs: map[string]map[string][]metrics{}, pairs: map[string]map[string][]pairRun{}}
	cfg, err := pgx.ParseConfig(o.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "pgflight-bench-" + s.runID + "-monitor"
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if s.monitor, err = pgx.ConnectConfig(cctx, cfg); err != nil {
		return nil, fmt.Errorf("postgres at %s: %w", redact(o.databaseURL), err)
	}
	ropt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("redis url: %w", err)
	}
	s.rdb = redis.NewClient(ropt)
	if err := s.rdb.Ping(cctx).Err(); err != nil {
		s.close()
		return nil, fmt.Errorf("redis at %s: %w", redact(o.redisURL), err)
	}
	if s.machine, err = describeMachine(cctx, s.monitor, s.rdb); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close closes the suite's connections.
func (s *suite) close() {
	if s.monitor != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.monitor.Close(ctx)
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
}

// run runs every scenario o.runs times; each repetition runs every
// contender once, starting with a different one each time.
func (s *suite) run(ctx context.Context) error {
	start := time.Now()
	s.logf("pgflight bench %s: PostgreSQL %s, Redis %s; %d repetition(s); load %s",
		s.runID, redact(s.o.databaseURL), redact(s.o.redisURL), s.o.runs, loadavg())
	var err error
	if s.machine.Floors, err = measureFloors(ctx, s.monitor, s.rdb); err != nil {
		return fmt.Errorf("floors: %w", err)
	}
	for _, sc := range scenarios(s.o) {
		if !slices.Contains(s.o.scenarios, sc.name) {
			continue
		}
		names := s.contendersOf(sc)
		s.runs[sc.name] = map[string][]metrics{}
		for rep := range sc.repetitions(s.o.runs) {
			for _, name := range runOrder(names, rep) {
				m, err := s.runOne(ctx, sc, name, rep)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					s.note("%s/%s, repetition %d: failed: %v", sc.name, name, rep+1, err)
				}
				s.runs[sc.name][name] = append(s.runs[sc.name][name], m)
			}
			for _, p := range sc.pairs {
				if !slices.Contains(s.o.contenders, p[0]) || !slices.Contains(s.o.contenders, p[1]) {
					continue
				}
				if s.pairs[sc.name] == nil {
					s.pairs[sc.name] = map[string][]pairRun{}
				}
				pr, err := s.runPair(ctx, sc, p, rep)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					s.note("%s/%s taking turns, repetition %d: failed: %v", sc.name, pairName(p), rep+1, err)
					continue
				}
				s.pairs[sc.name][pairName(p)] = append(s.pairs[sc.name][pairName(p)], pr)
			}
		}
	}
	s.machine.LoadAfter = loadavg()
	s.took = time.Since(start)
	s.logf("done in %v; load %s", s.took.Round(time.Second), s.machine.LoadAfter)
	return nil
}

// contendersOf returns the contenders that run sc, in report order. A
// variant runs only in the scenarios that name it (in contenders or with),
// when it or its contender is selected.
func (s *suite) contendersOf(sc *scenario) []string {
	var names []string
	for _, n := range contenders {
		selected := slices.Contains(s.o.contenders, n) || variants[n] != "" && slices.Contains(s.o.contenders, variants[n])
		named := slices.Contains(sc.contenders, n) || sc.contenders == nil && (variants[n] == "" || slices.Contains(sc.with, n))
		if selected && named {
			names = append(names, n)
		}
	}
	return names
}

// runOne runs one contender in one scenario once, and measures it.
func (s *suite) runOne(ctx context.Context, sc *scenario, name string, rep int) (metrics, error) {
	j := sc.job(s.o)
	j.Contender = name
	j.Prefix = fmt.Sprintf("pgflight-bench.%s.%s.%s.%d", s.runID, sc.name, name, rep)
	var sessions string
	sessions, j.App = s.appName(sc.name, name, rep)
	j.DatabaseURL, j.RedisURL = s.o.databaseURL, s.o.redisURL
	j.Seed = uint64(rep)
	j.CPUProfile, j.PGPool, j.PGLockPool = s.o.cpuProfile, s.o.pgPool, s.o.pglockPool
	f := &fleet{exe: s.exe, procs: sc.procs, job: j, crash: sc.crash, stderr: s.stderr}
	start := time.Now()
	smp := startSampler(s.monitor, s.rdb, sessions, j.App)
	res, err := f.run(ctx)
	p := smp.stop()
	s.deleteKeys(j.Prefix)
	if err != nil {
		return nil, err
	}
	m := sc.measure(j, res, p)
	for _, w := range res.reports {
		if w.Errors > 0 {
			s.note("%s/%s, repetition %d: %d of %d calls failed in pid %d; first error: %s",
				sc.name, name, rep+1, w.Errors, w.Calls, w.PID, w.FirstError)
			break
		}
	}
	if p.err != "" {
		s.note("%s/%s, repetition %d: sampling failed: %s", sc.name, name, rep+1, p.err)
	}
	for _, w := range res.reports {
		for _, msg := range w.Warnings {
			s.note("%s/%s: pgflight warned: %s", sc.name, name, msg)
		}
	}
	s.logf("[%s %d/%d] %-12s %s (%v)", sc.name, rep+1, sc.repetitions(s.o.runs), name, summary(sc.name, m),
		time.Since(start).Round(10*time.Millisecond))
	if st := sumStats(res.reports); st != nil {
		s.logf("    pgflight stats, summed over the workers: %+v", *st)
	}
	return m, nil
}

// appName returns the name of the next fleet's connections (its Redis
// client name and PostgreSQL application_name), and the beginning of it
// that is unique to the fleet. PostgreSQL sessions are counted by that
// beginning: pglock names its lock session after the pool's
// application_name, with a suffix, cutting the name to fit PostgreSQL's 63
// bytes.
func (s *suite) appName(scenario, contender string, rep int) (unique, app string) {
	s.fleets++
	unique = fmt.Sprintf("pgflight-bench-%s-%d-", s.runID, s.fleets)
	return unique, fmt.Sprintf("%s%s-%s-%d", unique, scenario, contender, rep)
}

// deleteKeys deletes the Redis keys that start with prefix, and only them.
func (s *suite) deleteKeys(prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := s.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			s.rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		s.rdb.Unlink(ctx, keys...)
	}
}

// note records a line for the report, once.
func (s *suite) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(s.notes, n) {
		s.notes = append(s.notes, n)
		s.logf("note: %s", n)
	}
}

// logf writes a line of progress on stderr.
func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// redact masks the password of a URL.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.LastIndex(u, "@"); at > i {
			if colon := strings.Index(u[i+3:at], ":"); colon >= 0 {
				return u[:i+3+colon+1] + "xxxxx" + u[at:]
			}
		}
	}
	return u
}
