package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stampedeKey is the one key of the once workload.
const stampedeKey = "stampede"

// A tally gathers the calls and errors of a worker's goroutines, and
// counts the errors that were 'out of shared memory'.
type tally struct {
	calls, errors, oom atomic.Int64
	mu                 sync.Mutex
	first              string
}

func (t *tally) add(err error) {
	t.calls.Add(1)
	if err == nil {
		return
	}
	msg := err.Error()
	if isOutOfSharedMemory(msg) {
		t.oom.Add(1)
	}
	if t.errors.Add(1) == 1 {
		t.mu.Lock()
		t.first = msg
		t.mu.Unlock()
	}
}

func (t *tally) report() workerReport {
	t.mu.Lock()
	defer t.mu.Unlock()
	return workerReport{Calls: t.calls.Load(), Errors: t.errors.Load(), OOM: t.oom.Load(), FirstError: t.first}
}

// together runs g goroutines, released at once, and returns when all have
// returned, with the time of the release.
func together(g int, body func(i int, t0 time.Time)) time.Time {
	start := make(chan struct{})
	var t0 time.Time // written before start closes, read after
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() {
			<-start
			body(i, t0)
		})
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
	return t0
}

// runOnce has every goroutine call once for stampedeKey, recording each
// call's latency from the release and, for a successful call, when it
// returned.
func runOnce(ctx context.Context, c contender, j job, cnt *counter) workerReport {
	var t tally
	lat := make([]int64, j.Goroutines)
	done := make([]int64, j.Goroutines)
	t0 := together(j.Goroutines, func(i int, t0 time.Time) {
		_, err := c.get(ctx, stampedeKey, cnt.fn(stampedeKey, -1))
		now := time.Now()
		lat[i] = int64(now.Sub(t0))
		if err == nil {
			done[i] = now.UnixNano()
		}
		t.add(err)
	})
	rep := t.report()
	rep.Latencies = lat
	for _, d := range done {
		if d != 0 {
			rep.Done = append(rep.Done, d)
		}
	}
	rep.Elapsed, rep.Release = since(t0), t0.UnixNano()
	return rep
}

// runLoop has every goroutine call in a tight loop for j.Duration, for keys
// drawn from j.Keys keys, Zipf-distributed if j.Zipf > 1 and uniformly
// otherwise, and fills each lane's report. With several lanes, the fleet
// takes turns of j.Slice: every goroutine of every worker calls the lane
// whose turn it is by the clock, so that the lanes share the background
// load of the machine, turn by turn.
func runLoop(ctx context.Context, lanes []*lane, j job) {
	type tallyOf struct {
		t     tally
		asked [][]bool
		hists []hist
		calls [][]int32 // with j.Calls: start and latency of each call, in µs
	}
	ts := make([]*tallyOf, len(lanes))
	for i := range ts {
		ts[i] = &tallyOf{asked: make([][]bool, j.Goroutines), hists: make([]hist, j.Goroutines),
			calls: make([][]int32, j.Goroutines)}
	}
	cpu0 := cpuTime()
	t0 := together(j.Goroutines, func(i int, t0 time.Time) {
		r := rand.New(rand.NewPCG(j.Seed, uint64(j.Index)<<32|uint64(i)))
		next := func() int { return r.IntN(j.Keys) }
		if j.Zipf > 1 {
			z := rand.NewZipf(r, j.Zipf, 1, uint64(j.Keys-1))
			next = func() int { return int(z.Uint64()) }
		}
		seen, h := make([][]bool, len(lanes)), make([]hist, len(lanes))
		calls := make([][]int32, len(lanes))
		for l := range lanes {
			seen[l], h[l] = make([]bool, j.Keys), newHist()
		}
		deadline := t0.Add(j.Duration)
		for now := time.Now(); now.Before(deadline); {
			l := 0
			if len(lanes) > 1 {
				l = int(now.Sub(t0)/j.Slice) % len(lanes)
			}
			k := next()
			seen[l][k] = true
			_, err := lanes[l].c.get(ctx, keyName(k), lanes[l].cnt.fn(keyName(k), k))
			ts[l].t.add(err)
			end := time.Now()
			h[l].add(int64(end.Sub(now)))
			if j.Calls {
				calls[l] = append(calls[l], int32(now.Sub(t0)/time.Microsecond), int32(end.Sub(now)/time.Microsecond))
			}
			now = end
		}
		for l := range lanes {
			ts[l].asked[i], ts[l].hists[i], ts[l].calls[i] = seen[l], h[l], calls[l]
		}
	})
	elapsed, cpu := since(t0), cpuTime()-cpu0
	for l, ln := range lanes {
		rep := ts[l].t.report()
		rep.Elapsed = elapsed
		if len(lanes) == 1 {
			rep.CPU = cpu
		} else {
			rep.Elapsed = turnTime(l, len(lanes), j.Slice, j.Duration)
		}
		rep.Hist = newHist()
		for _, h := range ts[l].hists {
			rep.Hist.merge(h)
		}
		for _, c := range ts[l].calls {
			rep.CallTimes = append(rep.CallTimes, c...)
		}
		rep.Release = t0.UnixNano()
		rep.Requested = make([]bool, j.Keys)
		for _, seen := range ts[l].asked {
			for k, ok := range seen {
				rep.Requested[k] = rep.Requested[k] || ok
			}
		}
		rep.PerKey = make([]int32, j.Keys)
		for k := range ln.cnt.perKey {
			rep.PerKey[k] = ln.cnt.perKey[k].Load()
		}
		ln.rep = rep
	}
}

// turnTime returns how much of a run of length d lane l of n had, in turns
// of slice each, lane 0 first.
func turnTime(l, n int, slice, d time.Duration) int64 {
	var t time.Duration
	for k := 0; time.Duration(k)*slice < d; k++ {
		if k%n == l {
			t += min(slice, d-time.Duration(k)*slice)
		}
	}
	return int64(t)
}

// runMany has every goroutine call once for a key of its own, all at once.
// For pgflight it also records the peak of pglock's connections in use.
func runMany(ctx context.Context, c contender, j job, cnt *counter) workerReport {
	var t tally
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		p, ok := c.(interface{ inUse() int })
		if !ok {
			return
		}
		for {
			if n := int64(p.inUse()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	t0 := together(j.Goroutines, func(i int, _ time.Time) {
		_, err := c.get(ctx, keyName(i), cnt.fn(keyName(i), -1))
		t.add(err)
	})
	close(stop)
	<-sampled
	rep := t.report()
	rep.Elapsed = since(t0)
	rep.PeakInUse = int(peak.Load())
	return rep
}

// cpuTime returns the CPU time, user and system, the process has used.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
