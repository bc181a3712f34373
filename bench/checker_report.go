package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// checkOptions are the checker's settings, from the command line
// (-checker and the -checker-* flags).
type checkOptions struct {
	enabled               bool
	duration, bound       time.Duration
	writePause, readPause time.Duration
	rows, readers         int
	goroutines, writers   int
	mode                  string
	configs               []string // of checkConfigs
	out                   string   // the file the section goes to; "" or "-": stdout
}

// checkConfigs are the configurations the checker runs in: pgflight on
// Redis and pglock, and the same with the local tier.
var checkConfigs = []string{"shared", "local"}

// checkLabels name the configurations in the report.
var checkLabels = map[string]string{"shared": "Redis + pglock", "local": "Redis + pglock + local tier (`Config.Local` = memstore)"}

// check reports a setting of o that the checker cannot run with.
func (o *checkOptions) check() error {
	if _, err := checkMode(o.mode); err != nil {
		return err
	}
	for _, c := range o.configs {
		if checkLabels[c] == "" {
			return fmt.Errorf("unknown checker configuration %q (want one of %v)", c, checkConfigs)
		}
	}
	if len(o.configs) == 0 || o.rows < 1 || o.readers < 1 || o.goroutines < 1 || o.writers < 1 || o.duration <= 0 {
		return fmt.Errorf("-checker-configs must name one configuration at least, -checker-rows, -checker-readers, -checker-goroutines and -checker-writers must be at least 1, -checker-duration positive")
	}
	if o.bound < 0 || o.writePause < 0 || o.readPause < 0 {
		return fmt.Errorf("-checker-bound, -checker-write-pause and -checker-read-pause must not be negative")
	}
	return nil
}

// runCheckerMode runs the checker once in each configuration of o and
// writes its report section.
func runCheckerMode(ctx context.Context, o *options, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to start readers: %w", err)
	}
	c := &o.check
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	rep := checkSection{o: o, loadBefore: loadavg(), date: time.Now().UTC()}
	logf("invalidation checker: PostgreSQL %s, Redis %s; mode %s; load %s", redact(o.databaseURL), redact(o.redisURL), c.mode, rep.loadBefore)
	for i, config := range c.configs {
		r := &checkRun{exe: exe, databaseURL: o.databaseURL, redisURL: o.redisURL, mode: c.mode, localTier: config == "local",
			rows: c.rows, readers: c.readers, goroutines: c.goroutines, writers: c.writers, writePause: c.writePause,
			readPause: c.readPause, duration: c.duration, bound: c.bound, seed: uint64(i + 1), stderr: stderr}
		t0 := time.Now()
		res, err := r.run(ctx)
		if err != nil {
			return fmt.Errorf("checker, %s: %w", config, err)
		}
		s := res.Sum
		logf("[checker %s] writes %d, reads %d, strict violations %d, lag p50 %s ms p99 %s ms max %s ms, beyond %v %d; backwards %d, corrupt %d, acausal %d, not converged %d, errors %d (%v)",
			config, res.Writes, s.Reads, s.Violations, msec(ms(min(s.Lag.quantile(0.5), s.MaxLag))), msec(ms(min(s.Lag.quantile(0.99), s.MaxLag))), msec(ms(s.MaxLag)),
			c.bound, s.Beyond, s.Backwards, s.Corrupt, s.Acausal, s.Unconverged, s.Errors, time.Since(t0).Round(10*time.Millisecond))
		if s.Stats != nil {
			logf("    pgflight stats, summed over the readers: %+v", *s.Stats)
		}
		for _, w := range s.Warnings {
			logf("    pgflight warned: %s", w)
		}
		rep.configs, rep.results = append(rep.configs, config), append(rep.results, res)
	}
	rep.loadAfter = loadavg()
	var b bytes.Buffer
	rep.write(&b)
	if c.out == "" || c.out == "-" {
		_, err = os.Stdout.Write(b.Bytes())
		return err
	}
	if err := os.WriteFile(c.out, b.Bytes(), 0o644); err != nil {
		return err
	}
	logf("wrote %s", c.out)
	return nil
}

// A checkSection is the checker's report: a Markdown section, ready to go
// into BENCHMARKS.md.
type checkSection struct {
	o                     *options
	configs               []string
	results               []*checkResult
	loadBefore, loadAfter string
	date                  time.Time
}

// write writes the section.
func (r *checkSection) write(b *bytes.Buffer) {
	c := &r.o.check
	fmt.Fprintf(b, "## Invalidation checker (issue 10, item 5)\n\n")
	fmt.Fprintf(b, "Written by `%s` on %s, pgflight at `%s`; %d cores (%s), shared with other engineers' work; load average (1, 5, 15 min) before: %s; after: %s.\n\n",
		r.o.command, r.date.Format("2006-01-02 15:04 UTC"), revision(), runtime.NumCPU(), cpuModel(), r.loadBefore, r.loadAfter)
	fmt.Fprintf(b, "### Targets\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range r.targets() {
		fmt.Fprintf(b, "| %s | %s | %s |\n", t.target, t.measured, t.verdict)
	}
	fmt.Fprintf(b, "\n### Method\n\n%s\n\n", checkMethod(c))
	fmt.Fprintf(b, "### Results\n\n| configuration | writes/s | reads checked | reads/s | strict violations | of the reads | lag p50 ms | lag p99 ms | lag max ms | superseded for p50 / p99 / max ms | superseded for > %v | went backwards | corrupt | acausal | rows not converged | read errors |\n|---|%s\n",
		c.bound, strings.Repeat("---|", 15))
	for i, res := range r.results {
		s := res.Sum
		secs := float64(res.Duration) / float64(time.Second)
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s |\n",
			checkLabels[r.configs[i]], rate(float64(res.Writes)/secs), rate(float64(s.Reads)), rate(float64(s.Reads)/secs),
			rate(float64(s.Violations)), percent(s.Violations, s.Reads),
			msec(ms(min(s.Lag.quantile(0.5), s.MaxLag))), msec(ms(min(s.Lag.quantile(0.99), s.MaxLag))), msec(ms(s.MaxLag)),
			msec(ms(min(s.Stale.quantile(0.5), s.MaxStale))), msec(ms(min(s.Stale.quantile(0.99), s.MaxStale))), msec(ms(s.MaxStale)),
			rate(float64(s.Beyond)), num(float64(s.Backwards)), num(float64(s.Corrupt)), num(float64(s.Acausal)),
			num(float64(s.Unconverged)), num(float64(s.Errors)))
	}
	fmt.Fprintln(b)
	for i, res := range r.results {
		s := res.Sum
		if s.Stats == nil {
			continue
		}
		st := s.Stats
		fmt.Fprintf(b, "- %s: read latency p50 %s µs, p99 %s µs; pgflight's counters over the readers: hits %s (local %s), computations %s, received from another process %s, broadcasts received %s, whole local tier dropped %d times, fail-opens %d, locks lost %d.\n",
			checkLabels[r.configs[i]], usec(s.Latency.quantile(0.5)), usec(s.Latency.quantile(0.99)),
			rate(float64(st.Hits)), rate(float64(st.LocalHits)), rate(float64(st.Computations)), rate(float64(st.Received)),
			rate(float64(st.Invalidations)), st.LocalDrops, st.FailOpens, st.LocksLost)
		for _, w := range s.Warnings {
			fmt.Fprintf(b, "  - pgflight warned: %s\n", strings.ReplaceAll(w, "\n", " "))
		}
	}
	fmt.Fprintf(b, "\nReproduce: `%s`\n", r.o.command)
}

// targets checks the runs against the target and the invariants
// that hold whatever the timing.
func (r *checkSection) targets() []targetRow {
	var rows []targetRow
	var strict, sound []string
	metStrict, metSound := true, true
	for i, res := range r.results {
		s := res.Sum
		strict = append(strict, fmt.Sprintf("%s: %s of %s reads (%s), lag p99 %s ms, max %s ms", checkLabels[r.configs[i]],
			rate(float64(s.Violations)), rate(float64(s.Reads)), percent(s.Violations, s.Reads), msec(ms(min(s.Lag.quantile(0.99), s.MaxLag))), msec(ms(s.MaxLag))))
		metStrict = metStrict && s.Violations == 0 && s.Reads > 0
		sound = append(sound, fmt.Sprintf("%s: corrupt %d, acausal %d, rows not converged %d", checkLabels[r.configs[i]], s.Corrupt, s.Acausal, s.Unconverged))
		metSound = metSound && s.Corrupt == 0 && s.Acausal == 0 && s.Unconverged == 0 && s.Reads > 0
	}
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	rows = append(rows, targetRow{fmt.Sprintf("checker (%v, mode %s): a reader is never served a value older than a write whose invalidation committed before the read began (0 strict violations)", r.o.check.duration, r.o.check.mode),
		strings.Join(strict, "; "), verdict(metStrict)})
	rows = append(rows, targetRow{"checker: every value served was written, after its transaction began; every row converges to its last version once the writers stop",
		strings.Join(sound, "; "), verdict(metSound)})
	return rows
}

// checkMethod describes how the checker measures, with c's settings.
func checkMethod(c *checkOptions) string {
	inv, _ := checkMode(c.mode)
	return fmt.Sprintf("The parent creates a table of its own for the run (`pgflight_check_<run id>`: %d rows `(id, version)`, every version 0) and starts %d reader processes (the command re-executing itself, as the other scenarios' workers do). Each reader has one pgflight Group of a namespace unique to the run: `redisstore` on Redis and `pglock.New(pool)` on a pgxpool pool of its own with the default settings, TTL 10 minutes (longer than the run, so that no expiry can hide a lost invalidation), and, in the local-tier configuration, `Config.Local = memstore.New()` (LocalTTL at its default, 1 minute); its fn reads the row's version from PostgreSQL on a second pool. "+
		"When every reader is ready, the parent releases them together and, for %v, %d writer goroutines each pick a random row and run `BEGIN`, `UPDATE … SET version = version + 1 WHERE id = $1 RETURNING version`, the invalidation (mode **%s**: %s), `COMMIT`, log the row, the version, when `BEGIN` was sent and when `COMMIT` returned, and pause %v. Meanwhile each reader's %d goroutines each Fetch a random row, record the row, the version served and when the call began and returned, and pause %v. "+
		"All times are wall-clock (`time.Now().UnixNano()`, CLOCK_REALTIME): every process runs on this one host and reads the same clock, so a time taken in one process compares with a time taken in another. A commit's time is read after `COMMIT` returned, under the log's lock, so it is never earlier than the return: a read counted as beginning after a commit began after the write was visible.\n\n"+
		"Every %v the parent sends every reader the writes logged since its last message and a watermark, a time read under the log's lock: every write whose `COMMIT` returned before it has been sent. A reader checks a read once the watermark has passed the read's start, so it knows every write committed before the read began; reads are checked while the run goes on and then dropped, so every read is checked, however many.\n\n"+
		"- A **strict violation** is a read that began after the `COMMIT` of a newer version of its row had returned, and was served an older version: the issue's target is none.\n"+
		"- Its **lag** is its start minus the commit time of the newest version it missed; **superseded for** is its start minus the earliest commit time of a version newer than the one served: how long the value it was served had been out of date. The two differ only for a read that missed two versions or more. Their p50 and p99 come from histograms with 10%% buckets (within 10%% above the true value); the max is exact.\n"+
		"- **Superseded for > %v** counts the violations that a weaker contract, \"a read sees every write whose invalidation committed more than %v before it began\", would also refuse.\n"+
		"- **Went backwards**: reads served an older version of a row than the same goroutine had been served before.\n"+
		"- **Corrupt**: values served that are not a version number, or versions of a row never written; **acausal**: versions served by a read that returned before the transaction that wrote them began. Both are 0 whatever the timing; so is **rows not converged**: after the writers stop, every reader reads every row until it is served the row's last version, for %v at most, and this counts the rows, over all readers, that never were.\n\n"+
		"Modes `keys` and `tags` deliver invalidations by notification alone, so the strict target cannot be met there, and the run measures by how much it is missed: `COMMIT` returns before any other process knows of it, and the handler's delete (keys) or the Group's forgetting the tag's version (tags) happens only once the notification has arrived, a few milliseconds later on an idle machine; a read that begins in that window is served the old value. Mode `tags+consistent` closes the window: each read first syncs with its process's lock session, and PostgreSQL sends a listening session every notification committed before a statement ahead of that statement's answer.",
		c.rows, c.readers, c.duration, c.writers, c.mode, inv.describe(), c.writePause, c.goroutines, c.readPause, streamEvery, c.bound, c.bound, convergeTimeout)
}

// usec formats ns as whole microseconds.
func usec(ns int64) string { return rate(float64(ns) / float64(time.Microsecond)) }

// percent formats n of total as a percentage.
func percent(n, total int64) string {
	if total == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(total))
}
