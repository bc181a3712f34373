package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/pgflight/pgflight"
)

// runWorker is one process of a fleet. It connects, says "ready" on
// stdout, waits for a line on stdin (the barrier), runs its job and writes
// its report on stdout as one JSON line.
func runWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	if os.Getenv(checkEnv) != "" {
		return runCheckReader(ctx, stdin, stdout) // a reader of the invalidation checker (checker.go)
	}
	j, err := jobFromEnv()
	if err != nil {
		return err
	}
	d, err := dial(ctx, j)
	if err != nil {
		return err
	}
	defer d.close()
	names := j.Pair
	if len(names) == 0 {
		names = []string{j.Contender}
	}
	out := &lockedWriter{w: stdout}
	var lanes []*lane
	for i, name := range names {
		ld := d
		if len(j.Pair) > 0 {
			// Each contender of a pair has keys of its own.
			ld = d.withPrefix(fmt.Sprintf("%s.%d.%s", j.Prefix, i, name)) // a Namespace has no ":"
		}
		c, err := newContender(name, ld)
		if err != nil {
			return err
		}
		l := &lane{c: c, cnt: &counter{d: j.Compute, keep: j.Times}}
		if j.Keys > 0 {
			l.cnt.perKey = make([]atomic.Int32, j.Keys)
		}
		if j.Warm {
			if err := warm(ctx, c, j); err != nil {
				return fmt.Errorf("warm: %w", err)
			}
		}
		if p, ok := c.(*pgflightC); ok {
			if err := p.warmUp(ctx, j.Index); err != nil {
				return err
			}
			l.base = p.stats() // the report counts from here
		}
		if j.Announce {
			l.cnt.announce = out
		}
		lanes = append(lanes, l)
	}
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}
	if err := waitLine(ctx, stdin); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	if j.CPUProfile != "" {
		stop, err := startProfile(j)
		if err != nil {
			return err
		}
		defer stop()
	}
	var rep workerReport
	switch j.Work {
	case workOnce:
		rep = runOnce(ctx, lanes[0].c, j, lanes[0].cnt)
	case workLoop:
		runLoop(ctx, lanes, j)
		rep = lanes[0].rep
		if len(lanes) > 1 {
			rep = workerReport{Elapsed: lanes[0].rep.Elapsed * int64(len(lanes))}
			for _, l := range lanes {
				l.finish(d)
				rep.Lanes = append(rep.Lanes, l.rep)
			}
		}
	case workMany:
		rep = runMany(ctx, lanes[0].c, j, lanes[0].cnt)
	case workWalk:
		rep = runWalk(ctx, lanes[0].c, j, lanes[0].cnt)
	default:
		return fmt.Errorf("unknown work %q", j.Work)
	}
	if len(lanes) == 1 {
		lanes[0].rep = rep
		lanes[0].finish(d)
		rep = lanes[0].rep
	}
	rep.PID = os.Getpid()
	rep.Warnings = d.warn.list()
	return json.NewEncoder(out).Encode(rep)
}

// A lane is one contender of a worker, with its computation and report.
type lane struct {
	c    contender
	cnt  *counter
	rep  workerReport
	base pgflight.Stats // pgflight: the Group's counters after the warm-up
}

// finish completes the lane's report with its computations and, for
// pgflight, the Group's counters since the warm-up.
func (l *lane) finish(d *deps) {
	l.rep.PID = os.Getpid()
	l.rep.Computations = l.cnt.n.Load()
	l.rep.ComputeTimes = l.cnt.times
	if d.pool != nil {
		l.rep.PoolMax = int(d.pool.Config().MaxConns)
	}
	if p, ok := l.c.(*pgflightC); ok {
		st := addStats(p.stats(), l.base, -1)
		l.rep.FailOpens, l.rep.Stats = st.FailOpens, &st
	}
}

// warm calls every key once, starting at a key that depends on the
// worker's index, so that workers warming at once seldom miss the same key
// together. Its computations are not counted.
func warm(ctx context.Context, c contender, j job) error {
	w := &counter{}
	for i := range j.Keys {
		k := (i + j.Index*j.Keys/8) % j.Keys
		if _, err := c.get(ctx, keyName(k), w.fn(keyName(k), -1)); err != nil {
			return err
		}
	}
	return nil
}

// startProfile starts a CPU profile of the worker, written to a file of
// j.CPUProfile named for the contender and the worker; stop ends it.
func startProfile(j job) (stop func(), err error) {
	f, err := os.Create(filepath.Join(j.CPUProfile, fmt.Sprintf("%s-%d.pprof", j.Contender, j.Index)))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// keyName returns the name of key number k.
func keyName(k int) string { return fmt.Sprintf("k%d", k) }

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

// since returns the nanoseconds from t0 until now.
func since(t0 time.Time) int64 { return int64(time.Since(t0)) }
