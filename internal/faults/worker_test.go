package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// The multi-process scenarios re-execute the test binary as worker
// processes: TestMain runs childMain when childEnv holds a workerConfig.
// The parent sends commands on a worker's stdin and reads events on its
// stdout, one JSON object a line each way. A worker runs each fetch
// command's calls at once, so a command written to every worker is a
// barrier across processes.
const childEnv = "PGFLIGHT_FAULTS_WORKER"

// workerConfig is what a worker connects to and how.
type workerConfig struct {
	DB        string // PostgreSQL or PgBouncer URL, used as is (pgxpool defaults)
	Redis     string
	Namespace string
	MaxConns  int32 // the pool's MaxConns if > 0
	Collide   bool  // every key's lock on one id (scenario 9)
	TxMode    bool  // pglock.WithTransactionMode: a pool connection per lock
	MaxLocks  int   // pglock.WithMaxLocks if > 0 (session mode)
}

// command is a line on a worker's stdin.
type command struct {
	Op         string // "fetch", "finish", "stats" or "exit"
	Round      string // names a fetch; its done event carries it
	Keys       []string
	Goroutines int           // callers per key; default 1
	Work       string        // what fn does: "block-first" or "sleep"
	Sleep      time.Duration // for "sleep"
	Timeout    time.Duration // each caller's ctx; 0: none
	Parallel   int           // at most this many calls at once; 0: all (-race allows 8,128 goroutines)
}

// Work kinds.
const (
	// blockFirst: the fleet's first computation of a key (counted in Redis)
	// blocks until the worker is told to finish the key (or is killed);
	// every later one returns at once.
	blockFirst = "block-first"
	// sleepWork: fn sleeps for command.Sleep, the expensive work.
	sleepWork = "sleep"
)

// event is a line on a worker's stdout.
type event struct {
	Ev       string // "ready", "computing", "done", "stats" or "exit"
	PID      int
	Round    string
	Key      string
	N        int64          // computing: the fleet's computations of Key so far, this one included
	At       int64          // computing: Unix nanoseconds
	Calls    []call         // done: every call of the round
	Stats    pgflight.Stats // done and exit
	Lock     pglock.Stats   // done, stats and exit: the Locker's (its state now, after Close at exit)
	Acquired int32          // exit: pool connections still acquired
	InUse    int            // exit: connections the Locker still used
}

// call is one Fetch call in a worker.
type call struct {
	Key, Value, Err string
	Start, End      int64 // Unix nanoseconds
}

func (c call) end() time.Time { return time.Unix(0, c.End) }

// collisionID is the lock id of every key when workerConfig.Collide is set.
const collisionID = 4242

// collide is a Locker that takes every lock on collisionID, forcing every
// pair of keys into a lock-id collision.
type collide struct{ l *pglock.Locker }

func (c collide) Lock(ctx context.Context, _ int64) (func(context.Context) error, error) {
	return c.l.Lock(ctx, collisionID)
}

func (c collide) LockOrFollow(ctx context.Context, _ int64) (func(context.Context) error, error) {
	return c.l.LockOrFollow(ctx, collisionID)
}

func (c collide) TryLock(ctx context.Context, _ int64) (func(context.Context) error, error) {
	return c.l.TryLock(ctx, collisionID)
}

// childMain is a worker process's main.
func childMain() int {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "worker config:", err)
		return 2
	}
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(cfg.DB)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opt, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rdb := redis.NewClient(opt)
	var opts []pglock.Option
	if cfg.TxMode {
		opts = append(opts, pglock.WithTransactionMode())
	}
	if cfg.MaxLocks > 0 {
		opts = append(opts, pglock.WithMaxLocks(cfg.MaxLocks))
	}
	pl := pglock.New(pool, opts...)
	var locker pgflight.Locker = pl
	if cfg.Collide {
		locker = collide{pl}
	}
	g, err := pgflight.New(pgflight.Config{
		Namespace: cfg.Namespace,
		Cache:     redisstore.New(rdb),
		Locker:    locker,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	pid := os.Getpid()
	var outMu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	say := func(ev event) {
		ev.PID = pid
		outMu.Lock()
		defer outMu.Unlock()
		enc.Encode(ev)
	}
	var finishMu sync.Mutex
	finish := map[string]chan struct{}{}
	finished := func(key string) chan struct{} {
		finishMu.Lock()
		defer finishMu.Unlock()
		if finish[key] == nil {
			finish[key] = make(chan struct{})
		}
		return finish[key]
	}

	fn := func(c command, key string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) {
			n, _ := rdb.Incr(ctx, cfg.Namespace+":calls:"+key).Result()
			say(event{Ev: "computing", Round: c.Round, Key: key, N: n, At: time.Now().UnixNano()})
			switch c.Work {
			case blockFirst:
				if n == 1 {
					<-finished(key)
				}
			case sleepWork:
				time.Sleep(c.Sleep) // the expensive work
			}
			return fmt.Sprintf("%s|%d|%d", value(key), pid, n), nil
		}
	}
	fetch := func(c command) {
		var mu sync.Mutex
		var calls []call
		var wg sync.WaitGroup
		n := len(c.Keys) * max(1, c.Goroutines)
		if c.Parallel > 0 {
			n = min(n, c.Parallel)
		}
		parallel := make(chan struct{}, max(n, 1))
		for _, key := range c.Keys {
			for range max(1, c.Goroutines) {
				wg.Add(1)
				parallel <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-parallel }()
					cctx, cancel := ctx, context.CancelFunc(func() {})
					if c.Timeout > 0 {
						cctx, cancel = context.WithTimeout(ctx, c.Timeout)
					}
					defer cancel()
					start := time.Now()
					v, err := pgflight.Fetch(cctx, g, key, fn(c, key))
					cl := call{Key: key, Value: v, Start: start.UnixNano(), End: time.Now().UnixNano()}
					if err != nil {
						cl.Err = err.Error()
					}
					mu.Lock()
					calls = append(calls, cl)
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
		say(event{Ev: "done", Round: c.Round, Calls: calls, Stats: g.Stats(), Lock: pl.Stats()})
	}

	say(event{Ev: "ready"})
	var wg sync.WaitGroup
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 64<<20) // a fetch command may name 10,000 keys
loop:
	for sc.Scan() {
		var c command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, "command:", err)
			return 2
		}
		switch c.Op {
		case "fetch":
			wg.Add(1)
			go func() {
				defer wg.Done()
				fetch(c)
			}()
		case "finish":
			for _, key := range c.Keys {
				close(finished(key))
			}
		case "stats":
			say(event{Ev: "stats", Lock: pl.Stats()})
		case "exit":
			break loop
		}
	}
	wg.Wait()
	g.Close()
	pl.Close()
	say(event{Ev: "exit", Stats: g.Stats(), Lock: pl.Stats(), Acquired: pool.Stat().AcquiredConns(), InUse: pl.InUse()})
	pool.Close()
	rdb.Close()
	return 0
}

// worker is a running worker process, seen from the parent.
type worker struct {
	i      int
	pid    int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan event    // done and exit events
	stats  chan event    // stats events, answers to "stats" commands
	gone   chan struct{} // closed when its stdout ends
}

// fleet is a set of worker processes.
type fleet struct {
	ws  []*worker
	cfg workerConfig

	mu        sync.Mutex
	computing []event // every worker's computing events, in arrival order
}

// startFleet starts n workers configured by cfg and waits until each is
// ready. They are killed at cleanup if still running.
func startFleet(t *testing.T, n int, cfg workerConfig) *fleet {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), childEnv+"="+string(b))
	f := &fleet{cfg: cfg}
	ready := make(chan error, n)
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stderr := new(syncBuffer)
		cmd.Stderr = stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w := &worker{i: i, pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, events: make(chan event, 64), stats: make(chan event, 1), gone: make(chan struct{})}
		go f.read(w, stdout, ready)
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-w.gone
			cmd.Wait()
			if t.Failed() && stderr.Len() > 0 {
				t.Logf("worker %d (pid %d) stderr:\n%s", i, w.pid, stderr)
			}
		})
		f.ws = append(f.ws, w)
	}
	for range n {
		select {
		case err := <-ready:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(patience):
			t.Fatal("a worker was not ready in time")
		}
	}
	return f
}

// read reads w's events until its stdout ends.
func (f *fleet) read(w *worker, stdout io.Reader, ready chan<- error) {
	defer close(w.gone)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 64<<20)
	said := false
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // not ours: a line the testing package printed
		}
		switch ev.Ev {
		case "ready":
			said = true
			ready <- nil
		case "computing":
			f.mu.Lock()
			f.computing = append(f.computing, ev)
			f.mu.Unlock()
		case "stats":
			w.stats <- ev
		default:
			w.events <- ev
		}
	}
	if !said {
		ready <- fmt.Errorf("worker %d (pid %d) exited before it was ready", w.i, w.pid)
	}
}

// send writes c to each worker of ws.
func send(t *testing.T, ws []*worker, c command) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	for _, w := range ws {
		if _, err := w.stdin.Write(b); err != nil {
			t.Fatalf("worker %d: %v", w.i, err)
		}
	}
}

// await returns the event that ends round (its done event; "exit" for the
// exit), failing t if the worker hangs (past patience) or dies first.
func (w *worker) await(t *testing.T, round string) event {
	t.Helper()
	return w.awaitWithin(t, round, patience)
}

// awaitWithin is await for a round that may take up to bound.
func (w *worker) awaitWithin(t *testing.T, round string, bound time.Duration) event {
	t.Helper()
	var ev event
	select {
	case ev = <-w.events:
	case <-w.gone:
		// Its last event, if any, was queued before its stdout ended.
		select {
		case ev = <-w.events:
		default:
			t.Fatalf("worker %d (pid %d) exited while in round %q", w.i, w.pid, round)
		}
	case <-time.After(bound):
		t.Fatalf("worker %d (pid %d) did not finish round %q within %v: it hangs", w.i, w.pid, round, bound)
	}
	if ev.Round != round {
		t.Fatalf("worker %d: %s event of round %q, want round %q", w.i, ev.Ev, ev.Round, round)
	}
	return ev
}

// awaitAll returns the done events of round from every worker of ws.
func awaitAll(t *testing.T, ws []*worker, round string) []event {
	t.Helper()
	return awaitAllWithin(t, ws, round, patience)
}

// awaitAllWithin is awaitAll for a round that may take up to bound.
func awaitAllWithin(t *testing.T, ws []*worker, round string, bound time.Duration) []event {
	t.Helper()
	deadline := time.Now().Add(bound)
	evs := make([]event, len(ws))
	for i, w := range ws {
		evs[i] = w.awaitWithin(t, round, max(time.Until(deadline), 0))
	}
	return evs
}

// stop tells every worker of ws to exit and checks that each ends holding
// no pool connection.
func stop(t *testing.T, ws []*worker) []event {
	t.Helper()
	send(t, ws, command{Op: "exit"})
	evs := awaitAll(t, ws, "")
	for i, ev := range evs {
		if ev.Ev != "exit" {
			t.Fatalf("worker %d: %q event, want exit", ws[i].i, ev.Ev)
		}
		if ev.Acquired != 0 || ev.InUse != 0 || ev.Lock.Held != 0 || ev.Lock.Awaited != 0 || ev.Lock.Connected {
			t.Errorf("worker %d exited with %d pool connections acquired, %d used by its Locker, %d locks held, %d waits, session connected %v; want 0, 0, 0, 0, false",
				ws[i].i, ev.Acquired, ev.InUse, ev.Lock.Held, ev.Lock.Awaited, ev.Lock.Connected)
		}
	}
	return evs
}

// awaitComputing returns the first computing event for which match holds.
func (f *fleet) awaitComputing(t *testing.T, match func(event) bool) event {
	t.Helper()
	var found event
	eventually(t, "a worker computes", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, ev := range f.computing {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// lockStats asks w for its Locker's Stats now.
func (w *worker) lockStats(t *testing.T) pglock.Stats {
	t.Helper()
	send(t, []*worker{w}, command{Op: "stats"})
	select {
	case ev := <-w.stats:
		return ev.Lock
	case <-w.gone:
		t.Fatalf("worker %d (pid %d) exited before it reported its Stats", w.i, w.pid)
	case <-time.After(patience):
		t.Fatalf("worker %d (pid %d) did not report its Stats within %v", w.i, w.pid, patience)
	}
	return pglock.Stats{}
}

// awaitFollowers waits until every worker of ws waits for another
// process's lock: by default, until its Locker reports one caller awaiting
// (a session-mode wait holds nothing in pg_locks); in transaction mode,
// until obs shows one ShareLock waiter per worker in pg_locks.
func (f *fleet) awaitFollowers(t *testing.T, ws []*worker, obs *pgxpool.Pool) {
	t.Helper()
	if f.cfg.TxMode {
		eventually(t, fmt.Sprintf("%d workers wait in pg_locks", len(ws)), func() bool {
			return count(t, obs, followersSQL) == len(ws)
		})
		return
	}
	eventually(t, fmt.Sprintf("%d workers' Lockers report a caller awaiting", len(ws)), func() bool {
		for _, w := range ws {
			if w.lockStats(t).Awaited != 1 {
				return false
			}
		}
		return true
	})
}

// worker returns the worker whose process is pid.
func (f *fleet) worker(t *testing.T, pid int) *worker {
	t.Helper()
	for _, w := range f.ws {
		if w.pid == pid {
			return w
		}
	}
	t.Fatalf("no worker has pid %d", pid)
	return nil
}

// except returns ws without x.
func except(ws []*worker, x *worker) []*worker {
	var out []*worker
	for _, w := range ws {
		if w != x {
			out = append(out, w)
		}
	}
	return out
}

// computations returns the fleet's count of computations of key, as fn
// counts them in Redis.
func computations(t *testing.T, rdb *redis.Client, ns, key string) int64 {
	t.Helper()
	n, err := rdb.Get(context.Background(), ns+":calls:"+key).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
