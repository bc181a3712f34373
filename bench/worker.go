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
)

// runWorker is one process of a fleet. It connects, says "ready" on
// stdout, waits for a line on stdin (the barrier), runs its job and writes
// its report on stdout as one JSON line.
func runWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	j, err := jobFromEnv()
	if err != nil {
		return err
	}
	d, err := dial(ctx, j)
	if err != nil {
		return err
	}
	defer d.close()
	c, err := newContender(j.Contender, d)
	if err != nil {
		return err
	}
	out := &lockedWriter{w: stdout}
	cnt := &counter{d: j.Compute, keep: j.Times}
	if j.Keys > 0 {
		cnt.perKey = make([]atomic.Int32, j.Keys)
	}
	if j.Warm {
		if err := warm(ctx, c, j); err != nil {
			return fmt.Errorf("warm: %w", err)
		}
	}
	if j.Announce {
		cnt.announce = out
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
		rep = runOnce(ctx, c, j, cnt)
	case workLoop:
		rep = runLoop(ctx, c, j, cnt)
	case workMany:
		rep = runMany(ctx, c, j, cnt)
	default:
		return fmt.Errorf("unknown work %q", j.Work)
	}
	rep.PID = os.Getpid()
	rep.Computations = cnt.n.Load()
	rep.ComputeTimes = cnt.times
	rep.Warnings = d.warn.list()
	if d.pool != nil {
		rep.PoolMax = int(d.pool.Config().MaxConns)
	}
	if p, ok := c.(*pgflightC); ok {
		st := p.stats()
		rep.FailOpens, rep.Stats = st.FailOpens, &st
	}
	return json.NewEncoder(out).Encode(rep)
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
