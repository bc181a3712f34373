package pgflight_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// The multi-process tests re-execute the test binary as worker processes
// (TestMain dispatches on childEnv). Workers report on stdout, one line per
// event, and start work together when the parent writes a line to their
// stdin: a barrier across processes.
const (
	childEnv   = "PGFLIGHT_CHILD"
	childNS    = "PGFLIGHT_CHILD_NAMESPACE"
	childKey   = "PGFLIGHT_CHILD_KEY"
	childG     = "PGFLIGHT_CHILD_GOROUTINES"
	childIndex = "PGFLIGHT_CHILD_INDEX"
	childDB    = "PGFLIGHT_TEST_DATABASE_URL"
	childRDB   = "PGFLIGHT_TEST_REDIS_URL"
	resultTag  = "result "
)

// childResult is what a worker reports when it is done.
type childResult struct {
	Values       map[string]int // value returned → how many calls returned it
	Errors       []string
	Computations uint64
	Received     uint64
	Acquired     int32 // pool connections still acquired at the end
}

// worker is a running child process.
type worker struct {
	cmd    *exec.Cmd
	stdin  *os.File
	lines  chan string
	result chan childResult
}

// startWorkers starts n workers of the given kind and waits until each
// says it is ready.
func startWorkers(t testing.TB, n int, kind, ns, key string, goroutines int) []*worker {
	t.Helper()
	env := append(os.Environ(),
		childEnv+"="+kind, childNS+"="+ns, childKey+"="+key, childG+"="+strconv.Itoa(goroutines),
		childDB+"="+testserver.PostgresURL(t), childRDB+"="+testserver.RedisURL(t))
	ws := make([]*worker, n)
	for i := range ws {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(env, childIndex+"="+strconv.Itoa(i))
		cmd.Stdin = r
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		wk := &worker{cmd: cmd, stdin: w, lines: make(chan string, 100), result: make(chan childResult, 1)}
		go func() {
			sc := bufio.NewScanner(out)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if res, ok := strings.CutPrefix(line, resultTag); ok {
					var cr childResult
					if err := json.Unmarshal([]byte(res), &cr); err != nil {
						t.Errorf("worker %d: bad result %q", cmd.Process.Pid, res)
					}
					wk.result <- cr
					continue
				}
				wk.lines <- line
			}
			close(wk.lines)
		}()
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		ws[i] = wk
	}
	for _, wk := range ws {
		if line := <-wk.lines; line != "ready" {
			t.Fatalf("worker said %q, want ready", line)
		}
	}
	return ws
}

// release lets every worker start at once.
func release(ws []*worker) {
	for _, wk := range ws {
		wk.stdin.WriteString("go\n")
	}
}

// results waits for the workers' reports.
func results(t *testing.T, ws []*worker) []childResult {
	t.Helper()
	var out []childResult
	for _, wk := range ws {
		select {
		case r := <-wk.result:
			out = append(out, r)
		case <-time.After(2 * time.Minute):
			t.Fatalf("worker %d never reported", wk.cmd.Process.Pid)
		}
	}
	return out
}

// Behaviour 3 and issue #2 (a): 6 processes x 40 goroutines on one cold key
// compute exactly once and all return the same value.
func TestMultiProcessStampedeComputesOnce(t *testing.T) {
	ns := namespace(t)
	ws := startWorkers(t, 6, "stampede", ns, "cold", 40)
	release(ws)
	values := map[string]int{}
	var computations uint64
	for _, r := range results(t, ws) {
		for _, e := range r.Errors {
			t.Errorf("worker error: %s", e)
		}
		for v, n := range r.Values {
			values[v] += n
		}
		computations += r.Computations
	}
	if computations != 1 {
		t.Errorf("computations across processes = %d, want 1", computations)
	}
	if len(values) != 1 {
		t.Errorf("distinct values = %v, want one", values)
	}
	for v, n := range values {
		if n != 6*40 {
			t.Errorf("value %q returned %d times, want %d", v, n, 6*40)
		}
	}
	if n := redisCounter(t, ns); n != 1 {
		t.Errorf("fn ran %d times (Redis counter), want 1", n)
	}
}

// Issue #2 (b): the lock holder is SIGKILLed mid-computation; a waiter in
// another process takes over and returns its own computed value.
func TestMultiProcessHolderKilled(t *testing.T) {
	ns := namespace(t)
	ws := startWorkers(t, 4, "holdforever", ns, "k", 5)
	pool := newPool(t)
	release(ws)
	// The first process whose fn runs says so and blocks forever.
	holder := waitForLine(t, ws, "computing")
	rdb := newRedis(t)
	eventually(t, "the other processes wait for the holder", func() bool {
		n, _ := rdb.Get(context.Background(), ns+":waiting").Int()
		return n == 3
	})
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var survivors []*worker
	for _, wk := range ws {
		if wk != holder {
			survivors = append(survivors, wk)
		}
	}
	values := map[string]int{}
	for _, r := range results(t, survivors) {
		for _, e := range r.Errors {
			t.Errorf("survivor error: %s", e)
		}
		for v, n := range r.Values {
			values[v] += n
		}
	}
	if len(values) != 1 {
		t.Fatalf("survivors' values = %v, want one", values)
	}
	for v, n := range values {
		if !strings.HasPrefix(v, "computed by ") || n != 3*5 {
			t.Errorf("value %q returned %d times, want a survivor's value %d times", v, n, 3*5)
		}
	}
	if n := redisCounter(t, ns); n != 2 {
		t.Errorf("fn ran %d times, want 2 (the killed holder, one survivor)", n)
	}
	eventually(t, "no advisory lock is left", func() bool { return advisoryLocks(t, pool) == 0 })
}

// Issue #2 (c): a storm of successes, errors, panics and cancellations over
// a few dozen keys leaves no advisory lock held.
func TestMultiProcessStormLeavesNoLocks(t *testing.T) {
	ns := namespace(t)
	ws := startWorkers(t, 4, "storm", ns, "", 8)
	release(ws)
	for _, r := range results(t, ws) {
		for _, e := range r.Errors {
			t.Errorf("worker error: %s", e)
		}
		if r.Acquired != 0 {
			t.Errorf("a worker ended with %d pool connections acquired, want 0", r.Acquired)
		}
	}
	pool := newPool(t)
	if n := advisoryLocks(t, pool); n != 0 {
		t.Errorf("advisory locks after the storm = %d, want 0", n)
	}
}

func waitForLine(t *testing.T, ws []*worker, want string) *worker {
	t.Helper()
	found := make(chan *worker, len(ws))
	for _, wk := range ws {
		go func() {
			for line := range wk.lines {
				if line == want {
					found <- wk
					return
				}
			}
		}()
	}
	select {
	case wk := <-found:
		return wk
	case <-time.After(time.Minute):
		t.Fatalf("no worker said %q", want)
		return nil
	}
}

// redisCounter returns the count of fn calls that workers of ns made.
func redisCounter(t *testing.T, ns string) int64 {
	n, err := newRedis(t).Get(context.Background(), ns+":calls").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return n
}

// childMain is a worker process's main.
func childMain() int {
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(os.Getenv(childDB))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	pcfg.MaxConns = 20 // pglock's default cap is then 10 connections
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer pool.Close()
	opt, err := redis.ParseURL(os.Getenv(childRDB))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ns, key := os.Getenv(childNS), os.Getenv(childKey)
	goroutines, _ := strconv.Atoi(os.Getenv(childG))
	kind := os.Getenv(childEnv)
	locker := pglock.New(pool)
	defer locker.Close()
	cfg := pgflight.Config{Namespace: ns, Cache: redisstore.New(rdb), Locker: locker}
	local := memstore.New()
	defer local.Close()
	if kind == "localtier" {
		// Copies never expire during the test: only broadcasts drop them.
		cfg.Local, cfg.LocalTTL = local, time.Hour
	}
	if kind == "stale" {
		cfg.TTL, cfg.StaleTTL = time.Hour, time.Hour
	}
	if kind == "txinvalidate" || kind == "tags" || kind == "consistent" {
		cfg.Local, cfg.LocalTTL = local, time.Hour // only invalidations drop copies
	}
	if kind == "fanout" {
		// See BenchmarkInvalidationFanoutProcesses: every drop of a copy
		// is reported with the wall-clock time it happened.
		cfg.Local = timedLocal{local}
	}
	g, err := pgflight.New(cfg)
	if kind == "stale" {
		// Our clock runs past the entry's fresh time; see TestMultiProcessStale.
		pgflight.SetClock(g, func() time.Time { return time.Now().Add(61 * time.Minute) })
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var out sync.Mutex
	say := func(s string) {
		out.Lock()
		fmt.Println(s)
		out.Unlock()
	}
	calls := func() int64 { return rdb.Incr(ctx, ns+":calls").Val() }
	pid := os.Getpid()

	say("ready")
	in := bufio.NewReader(os.Stdin)
	in.ReadString('\n')

	var mu sync.Mutex
	res := childResult{Values: map[string]int{}}
	record := func(v string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			return
		}
		res.Values[v]++
	}
	switch kind {
	case "stampede":
		run(goroutines, func(int) {
			record(pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
				calls()
				time.Sleep(200 * time.Millisecond) // the expensive work
				return fmt.Sprintf("computed by %d", pid), nil
			}))
		})
	case "slowcompute":
		// Computes key, holding its lock, until the parent says finish;
		// see TestMultiProcessDeleteOrdersAfterComputation.
		record(pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
			say("computing")
			in.ReadString('\n')
			return "old", nil
		}))
	case "fanout":
		for g.Stats().LocalDrops == 0 {
			time.Sleep(time.Millisecond) // until the tier is live
		}
		say("live")
		in.ReadString('\n') // until the parent is done
	case "consistent":
		// See TestMultiProcessConsistentRead: one consistent read of key,
		// tagged t, per line from the parent.
		for g.Stats().LocalDrops == 0 {
			time.Sleep(time.Millisecond) // until the tier is live
		}
		say("live")
		for line, _ := in.ReadString('\n'); line == "read\n"; line, _ = in.ReadString('\n') {
			v, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
				return fmt.Sprintf("computation %d", calls()), nil
			}, pgflight.WithTags("t"), pgflight.WithConsistentRead())
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			say("read " + v)
		}
	case "tags":
		// See TestMultiProcessTags. Mode commit: commit an invalidation of
		// tag t, then die at once. Otherwise, each round: hold a local
		// copy of key, tagged t, then Fetch until the parent's
		// invalidation makes it return another value.
		if os.Getenv("PGFLIGHT_CHILD_TX") == "commit" {
			return commitThenDie(ctx, pool, func(tx pgx.Tx) error { return pglock.InvalidateTags(ctx, tx, ns, "t") })
		}
		for g.Stats().LocalDrops == 0 {
			time.Sleep(time.Millisecond) // until the tier is live
		}
		for round, line := 1, "go\n"; line == "go\n"; round, line = round+1, func() string { l, _ := in.ReadString('\n'); return l }() {
			fetch := func() (string, error) {
				return pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
					calls()
					return fmt.Sprintf("round %d by %d", round, pid), nil
				}, pgflight.WithTags("t"))
			}
			held, err := fetch()
			if err == nil {
				_, err = fetch() // from the local tier
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			_, copied, _ := local.Get(ctx, key)
			say(fmt.Sprintf("holding %s %t", held, copied))
			for {
				v, err := fetch()
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 2
				}
				if v != held {
					record(v, nil)
					say("saw " + v)
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	case "localtier":
		// See TestMultiProcessLocalTier.
		copyOf := func() bool { _, ok, _ := local.Get(ctx, key); return ok }
		waitUntil := func(cond func() bool) {
			for !cond() {
				time.Sleep(time.Millisecond)
			}
		}
		fetch := func() (string, error) {
			return pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
				calls()
				return fmt.Sprintf("v2 by %d", pid), nil
			})
		}
		waitUntil(func() bool { return g.Stats().LocalDrops > 0 }) // live
		fetch()                                                    // from Redis, kept
		v, _ := fetch()                                            // from the local tier
		say(fmt.Sprintf("local %s %d", v, g.Stats().LocalHits))
		waitUntil(func() bool { return !copyOf() }) // the parent's Delete
		say("invalidated")
		in.ReadString('\n')
		record(fetch())
		drops := g.Stats().LocalDrops
		waitUntil(func() bool { fetch(); return copyOf() }) // a hit on Redis keeps a copy
		say("armed")
		waitUntil(func() bool { return g.Stats().LocalDrops > drops && !copyOf() }) // the session cut
		say("dropped")
	case "txinvalidate":
		// See TestTxInvalidateMultiProcess. Mode commit: commit an
		// invalidation of key, then die at once. Otherwise: handle the
		// namespace's invalidations and, each round, hold a local copy of
		// key until it is invalidated.
		if os.Getenv("PGFLIGHT_CHILD_TX") == "commit" {
			return commitThenDie(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "update pgflight_txtest set v = v + 1 where id = $1", ns); err != nil {
					return err
				}
				return pglock.Invalidate(ctx, tx, ns, key)
			})
		}
		copyOf := func() bool { _, ok, _ := local.Get(ctx, key); return ok }
		waitUntil := func(cond func() bool) {
			for !cond() {
				time.Sleep(time.Millisecond)
			}
		}
		waitUntil(func() bool { return g.Stats().LocalDrops > 0 }) // live
		for line := "go\n"; line == "go\n"; line, _ = in.ReadString('\n') {
			fetch := func() (string, error) {
				return pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
					return "", errors.New("computed in a worker: the parent stores each value first")
				})
			}
			fetch()           // from Redis, kept
			v, err := fetch() // from the local tier
			record(v, err)
			say(fmt.Sprintf("local %s %t", v, copyOf()))
			waitUntil(func() bool { return !copyOf() })
			say("invalidated")
		}
	case "holdforever":
		go func() {
			// Tell the parent, through Redis, once this process waits for
			// another's computation: the wait holds no lock in pg_locks
			// (a follow marker at most).
			for locker.Stats().Awaited == 0 {
				time.Sleep(time.Millisecond)
			}
			rdb.Incr(ctx, ns+":waiting")
		}()
		run(goroutines, func(int) {
			record(pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
				if calls() == 1 {
					say("computing")
					select {} // until SIGKILL
				}
				return fmt.Sprintf("computed by %d", pid), nil
			}))
		})
	case "stale":
		fn := func(context.Context) (string, error) {
			calls()
			// Refresh only once the parent has seen every caller served.
			for rdb.Exists(ctx, ns+":release").Val() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			return fmt.Sprintf("refreshed by %d", pid), nil
		}
		run(goroutines, func(int) { record(pgflight.Fetch(ctx, g, key, fn)) })
		say("served")
		// Wait until the refresh, ours or another process's, is visible.
		for {
			v, err := pgflight.Fetch(ctx, g, key, fn)
			if err != nil || strings.HasPrefix(v, "refreshed by ") {
				record(v, err)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	case "missing":
		run(goroutines, func(int) {
			_, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) {
				calls()
				time.Sleep(50 * time.Millisecond) // the lookup
				return "", fmt.Errorf("user 7 not found: %w", pgflight.ErrMissing)
			})
			if errors.Is(err, pgflight.ErrMissing) {
				record("missing: "+err.Error(), nil)
			} else {
				record("", fmt.Errorf("err = %v, want ErrMissing", err))
			}
		})
	case "batch":
		// Worker i asks for keys 5i … 5i+14 of 30: every key is wanted by
		// two or three workers at once.
		index, _ := strconv.Atoi(os.Getenv(childIndex))
		var keys []string
		for k := 5 * index; k < 5*index+15; k++ {
			keys = append(keys, fmt.Sprintf("k%02d", k%30))
		}
		run(goroutines, func(int) {
			got, err := pgflight.FetchMany(ctx, g, keys, func(ctx context.Context, missing []string) (map[string]string, error) {
				for _, k := range missing {
					rdb.HIncrBy(ctx, ns+":perkey", k, 1)
				}
				time.Sleep(100 * time.Millisecond) // the batch query
				vals := map[string]string{}
				for _, k := range missing {
					vals[k] = "value of " + k
				}
				return vals, nil
			})
			if err == nil {
				for _, k := range keys {
					if got[k] != "value of "+k {
						err = fmt.Errorf("key %s = %q", k, got[k])
					}
				}
			}
			record("ok", err)
		})
	case "storm":
		run(goroutines, func(i int) {
			rng := rand.New(rand.NewPCG(uint64(pid), uint64(i)))
			for range 60 {
				k := fmt.Sprintf("k%d", rng.IntN(30))
				cctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(30))*time.Millisecond)
				var opts []pgflight.Option
				if rng.IntN(5) == 0 {
					opts = append(opts, pgflight.WithForceRefresh())
				}
				// fn may outlive this caller's loop iteration, so it
				// draws nothing from rng itself.
				mode, work := rng.IntN(4), time.Duration(rng.IntN(20))*time.Millisecond
				_, err := pgflight.Fetch(cctx, g, k, func(ctx context.Context) (string, error) {
					switch mode {
					case 0:
						return "", errBoom
					case 1:
						panic("storm")
					case 2:
						select {
						case <-time.After(work):
						case <-ctx.Done():
							return "", ctx.Err()
						}
					}
					return k, nil
				}, append(opts, pgflight.WithTTL(time.Duration(1+rng.IntN(50))*time.Millisecond))...)
				cancel()
				var pe *pgflight.PanicError
				if err != nil && !errors.Is(err, errBoom) && !errors.As(err, &pe) && !errors.Is(err, context.DeadlineExceeded) {
					record("", err)
				}
			}
		})
	}
	g.Close()
	s := g.Stats()
	res.Computations, res.Received = s.Computations, s.Received
	// pgxpool destroys a broken connection in a goroutine of its own, and
	// counts it as acquired until then: wait for those to finish.
	for deadline := time.Now().Add(10 * time.Second); pool.Stat().AcquiredConns() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	res.Acquired = pool.Stat().AcquiredConns()
	b, _ := json.Marshal(res)
	say(resultTag + string(b))
	return 0
}

// commitThenDie runs invalidate in a transaction, commits it, and SIGKILLs
// the process the moment COMMIT returns; it returns only on failure.
func commitThenDie(ctx context.Context, pool *pgxpool.Pool, invalidate func(tx pgx.Tx) error) int {
	tx, err := pool.Begin(ctx)
	if err == nil {
		err = invalidate(tx)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// timedLocal is a worker's local tier that prints the wall-clock time of
// every Delete, which is how a broadcast drops a copy.
type timedLocal struct{ *memstore.Store }

func (l timedLocal) Delete(ctx context.Context, key string) error {
	fmt.Printf("dropped %d\n", time.Now().UnixNano())
	return l.Store.Delete(ctx, key)
}
