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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bounds on the demo's worker processes. A worker still running past them
// is killed, and the demo fails.
const (
	readyTimeout = 30 * time.Second // from start until every worker is ready
	runSlack     = 30 * time.Second // from release until every worker has exited, plus 10 computations
)

// A fleet runs one mode of the demo in worker processes: re-executions of
// this binary with the hidden worker command.
type fleet struct {
	exe        string // this binary
	procs      int
	goroutines int
	keys       int // 0: every goroutine asks for one key; else the cold start's keys
	compute    time.Duration
	pg         pgTarget
	redis      redisTarget
	app        string    // application_name of the workers' PostgreSQL sessions
	monitor    *pgx.Conn // samples the workers' sessions; nil samples nothing
	stderr     io.Writer // the workers' stderr

	// ready bounds the wait for every worker to be ready, and slack that
	// for every worker to exit after the release, beyond 10 computations.
	ready, slack time.Duration
}

// A workerProc is a running worker process.
type workerProc struct {
	cmd    *exec.Cmd
	stdin  *os.File
	lines  chan string   // the worker's stdout; closed at its end
	exited chan error    // cmd.Wait's result
	gone   chan struct{} // closed by kill: nobody reads lines any more
}

// run starts f.procs workers for mode, waits until all are ready, releases
// them together and sums up their reports. It samples the workers'
// PostgreSQL sessions from before the first starts until the last exits.
// It fails if a worker fails or is late; it kills every worker still
// running when it returns.
func (f *fleet) run(ctx context.Context, mode, namespace string) (*modeResult, error) {
	s := startSampler(f.monitor, f.app)
	var procs []*workerProc
	defer func() {
		for _, p := range procs {
			p.kill()
		}
		s.stop()
	}()
	for range f.procs {
		p, err := f.start(mode, namespace)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}

	rctx, cancel := context.WithTimeout(ctx, f.ready)
	defer cancel()
	for _, p := range procs {
		line, err := p.next(rctx)
		if err != nil {
			return nil, p.failure("ready", err)
		}
		if line != "ready" {
			return nil, fmt.Errorf("worker %d said %q, want ready", p.cmd.Process.Pid, line)
		}
	}
	for _, p := range procs {
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			return nil, p.failure("release", err)
		}
		p.stdin.Close()
	}

	wctx, cancel := context.WithTimeout(ctx, f.slack+10*f.compute)
	defer cancel()
	res := &modeResult{mode: mode}
	for _, p := range procs {
		line, err := p.next(wctx)
		if err != nil {
			return nil, p.failure("report", err)
		}
		var rep workerReport
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			return nil, fmt.Errorf("worker %d: bad report %q: %w", p.cmd.Process.Pid, line, err)
		}
		res.add(rep)
	}
	for _, p := range procs {
		if err := p.wait(wctx); err != nil {
			return nil, fmt.Errorf("worker %d: %w", p.cmd.Process.Pid, err)
		}
	}
	var err error
	if res.peakConns, err = s.stop(); err != nil {
		return nil, fmt.Errorf("sample pg_stat_activity: %w", err)
	}
	return res, nil
}

// start starts one worker, which connects and then says "ready".
func (f *fleet) start(mode, namespace string) (*workerProc, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := exec.Command(f.exe, workerCommand,
		"-mode", mode, "-namespace", namespace, "-key", "report", "-keys", strconv.Itoa(f.keys), "-app", f.app,
		"-goroutines", strconv.Itoa(f.goroutines), "-compute", f.compute.String())
	cmd.Env = append(os.Environ(), workerEnv+"=1",
		workerDatabaseEnv+"="+f.pg.connString, workerRedisEnv+"="+f.redis.url)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, f.stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	p := &workerProc{cmd: cmd, stdin: inW, lines: make(chan string, 2),
		exited: make(chan error, 1), gone: make(chan struct{})}
	go func() {
		defer outR.Close()
		defer close(p.lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 64<<20) // a report holds every latency
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			case <-p.gone:
				return
			}
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
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

// kill kills the worker if it is still running, and reaps it.
func (p *workerProc) kill() {
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

// A lockedWriter serialises writes, so that several workers' stderr can
// share one writer.
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
