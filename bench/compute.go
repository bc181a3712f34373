package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A counter is a worker's expensive computation: it sleeps for d and
// counts its calls, in all and per key.
type counter struct {
	d        time.Duration
	n        atomic.Int64
	perKey   []atomic.Int32 // indexed by key number; nil unless keys are numbered
	announce io.Writer      // if not nil, gets "computing <unix ns>" at the first call
	once     sync.Once

	mu    sync.Mutex
	times []int64 // Unix time each computation started; nil unless recorded
	keep  bool    // record times
}

// fn returns the computation of key number k (k < 0: not numbered).
func (c *counter) fn(key string, k int) computeFunc {
	return func(ctx context.Context) (string, error) {
		now := time.Now()
		c.n.Add(1)
		if k >= 0 && k < len(c.perKey) {
			c.perKey[k].Add(1)
		}
		if c.keep {
			c.mu.Lock()
			c.times = append(c.times, now.UnixNano())
			c.mu.Unlock()
		}
		if c.announce != nil {
			c.once.Do(func() { fmt.Fprintf(c.announce, "computing %d\n", now.UnixNano()) })
		}
		if c.d > 0 {
			t := time.NewTimer(c.d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return fmt.Sprintf("value of %s, computed by pid %d at %s", key, os.Getpid(), now.Format(time.RFC3339Nano)), nil
	}
}

// lockedWriter serialises writes, so that goroutines can share stdout.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p to the underlying writer, alone.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
