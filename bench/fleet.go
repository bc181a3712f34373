package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds on a fleet's worker processes. A worker still running past them
// is killed, and the run fails.
const (
	readyTimeout = 60 * time.Second // from start until every worker is ready
	runSlack     = 60 * time.Second // from release until every report, beyond the job's Duration
)

// A fleet runs one job in procs worker processes: re-executions of exe.
type fleet struct {
	exe    string    // the binary to re-execute
	procs  int       // worker processes
	job    job       // Index is set per worker
	crash  bool      // kill the first worker to compute, half-way through
	stderr io.Writer // the workers' stderr
}

// A fleetResult is what a fleet's workers reported.
type fleetResult struct {
	reports []workerReport // of the workers that were not killed
	killed  int            // pid of the killed worker; 0 if none
	killAt  int64          // Unix time of the kill, in ns
}

// A workerProc is a running worker process.
type workerProc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string         // the worker's stdout, except announcements; closed at its end
	announce chan<- announcement // receives "computing" announcements
	exited   chan error          // cmd.Wait's result
	gone     chan struct{}       // closed by stop: nobody reads lines any more
}

// run starts the workers, waits until all are ready, releases them
// together and collects their reports. With f.crash it kills the first
// worker that announces a computation, half-way through it. It kills every
// worker still running when it returns.
func (f *fleet) run(ctx context.Context) (*fleetResult, error) {
	announce := make(chan announcement, f.procs)
	var procs []*workerProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for i := range f.procs {
		j := f.job
		j.Index = i
		p, err := f.start(j, announce)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	if err := releaseAll(ctx, procs); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, f.job.Duration+runSlack)
	defer cancel()
	res := &fleetResult{}
	if f.crash {
		if err := f.killFirst(wctx, announce, res); err != nil {
			return nil, err
		}
	}
	for _, p := range procs {
		if p.cmd.Process.Pid == res.killed {
			continue
		}
		line, err := p.next(wctx)
		if err != nil {
			return nil, p.failure("report", err)
		}
		var rep workerReport
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			return nil, fmt.Errorf("worker %d: bad report %.200q: %w", p.cmd.Process.Pid, line, err)
		}
		res.reports = append(res.reports, rep)
		if err := p.wait(wctx); err != nil {
			return nil, fmt.Errorf("worker %d: %w", p.cmd.Process.Pid, err)
		}
	}
	return res, nil
}

// An announcement is a worker saying it started computing, at ns.
type announcement struct {
	p  *workerProc
	ns int64 // Unix time in ns
}

// killFirst waits for the first announcement of a computation, then kills
// its worker with SIGKILL half-way through the computation.
func (f *fleet) killFirst(ctx context.Context, announce <-chan announcement, res *fleetResult) error {
	var a announcement
	select {
	case a = <-announce:
	case <-ctx.Done():
		return fmt.Errorf("no worker computed: %w", ctx.Err())
	}
	time.Sleep(time.Until(time.Unix(0, a.ns).Add(f.job.Compute / 2)))
	res.killAt = time.Now().UnixNano()
	if err := a.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill worker %d: %w", a.p.cmd.Process.Pid, err)
	}
	res.killed = a.p.cmd.Process.Pid
	return nil
}

// start starts worker j.Index, which connects and then says "ready".
func (f *fleet) start(j job, announce chan<- announcement) (*workerProc, error) {
	return startProc(f.exe, jobEnv+"="+j.encode(), f.stderr, announce)
}

// startProc starts exe as a worker process with env, its stderr to stderr,
// announcements (if announce is not nil) to announce.
func startProc(exe, env string, stderr io.Writer, announce chan<- announcement) (*workerProc, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), workerEnv+"=1", env)
	cmd.Stderr = stderr
	// The kernel kills a worker whose parent dies, so none outlives a run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Not cmd.StdoutPipe, which cmd.Wait closes as soon as the worker
	// exits, possibly before its report has been read.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = outW
	err = cmd.Start()
	outW.Close()
	if err != nil {
		outR.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	p := &workerProc{cmd: cmd, stdin: stdin, lines: make(chan string, 2), announce: announce,
		exited: make(chan error, 1), gone: make(chan struct{})}
	go p.read(outR)
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// read routes the worker's stdout: announcements to p.announce, every
// other line to p.lines.
func (p *workerProc) read(stdout io.ReadCloser) {
	defer stdout.Close()
	defer close(p.lines)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 256<<20) // a report can hold every latency
	for sc.Scan() {
		line := sc.Text()
		if t, ok := strings.CutPrefix(line, "computing "); ok {
			if ns, err := strconv.ParseInt(t, 10, 64); err == nil {
				select {
				case p.announce <- announcement{p, ns}:
				default:
				}
				continue
			}
		}
		select {
		case p.lines <- line:
		case <-p.gone:
			return
		}
	}
}

// errNoOutput reports a worker whose stdout ended early.
var errNoOutput = errors.New("output ended")

// next returns the worker's next line of output.
func (p *workerProc) next(ctx context.Context) (string, error) {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return "", errNoOutput
		}
		return line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// failure describes a worker that failed at step, with its exit status if
// it exited.
func (p *workerProc) failure(step string, err error) error {
	if errors.Is(err, errNoOutput) {
		select {
		case werr := <-p.exited:
			p.exited <- werr
			if werr != nil {
				err = werr
			}
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("worker %d (%s): %w", p.cmd.Process.Pid, step, err)
}

// wait waits for the worker to exit and returns its failure, if any.
func (p *workerProc) wait(ctx context.Context) error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-ctx.Done():
		return fmt.Errorf("did not exit: %w", ctx.Err())
	}
}

// stop kills the worker if it is still running, and reaps it.
func (p *workerProc) stop() {
	close(p.gone)
	p.stdin.Close()
	select {
	case err := <-p.exited:
		p.exited <- err
		return
	default:
	}
	p.cmd.Process.Kill()
	p.exited <- <-p.exited
}

// releaseAll waits until every process says it is ready, within
// readyTimeout, then lets them all start at once.
func releaseAll(ctx context.Context, procs []*workerProc) error {
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for _, p := range procs {
		line, err := p.next(rctx)
		if err != nil {
			return p.failure("ready", err)
		}
		if line != "ready" {
			return fmt.Errorf("worker %d said %q, want ready", p.cmd.Process.Pid, line)
		}
	}
	for _, p := range procs {
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			return p.failure("release", err)
		}
	}
	return nil
}
