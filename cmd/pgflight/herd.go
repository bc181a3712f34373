package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A computeCounter is the demo's expensive computation: it sleeps and
// counts how often it ran.
type computeCounter struct {
	d time.Duration
	n atomic.Int64
}

// compute takes d, or returns early with ctx's error.
func (c *computeCounter) compute(ctx context.Context) (string, error) {
	n := c.n.Add(1)
	t := time.NewTimer(c.d)
	defer t.Stop()
	select {
	case <-t.C:
		return fmt.Sprintf("report computed by pid %d (#%d)", os.Getpid(), n), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// callTogether starts n goroutines, waits for barrier to return, then lets
// them all run call at once, and returns each call's latency, measured from
// the release, and error. If barrier fails, no call runs.
func callTogether(n int, barrier func() error, call func() error) ([]time.Duration, []error, error) {
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var t0 time.Time // written before start closes, read after
	released := false
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			if released {
				errs[i] = call()
				lat[i] = time.Since(t0)
			}
		})
	}
	err := barrier()
	if err == nil {
		released, t0 = true, time.Now()
	}
	close(start)
	wg.Wait()
	return lat, errs, err
}

// newReport summarises the calls of one process.
func newReport(lat []time.Duration, errs []error, computations int64) workerReport {
	rep := workerReport{PID: os.Getpid(), Calls: len(lat), Computations: computations, Latencies: lat}
	for _, err := range errs {
		if err != nil {
			if rep.Errors == 0 {
				rep.FirstError = err.Error()
			}
			rep.Errors++
		}
	}
	return rep
}
