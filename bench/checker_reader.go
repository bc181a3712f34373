package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// Settings of a reader.
const (
	checkTTL        = 10 * time.Minute // of the cached rows: longer than a run, so that no expiry hides a lost invalidation
	convergeTimeout = 20 * time.Second // for every row to be served its last version once the writers stopped
	batchReads      = 4096             // reads a goroutine hands to the analyzer at once
)

// A logMsg is one line the parent streams to a reader: a write, a
// watermark, or the end of the log.
type logMsg struct {
	w    write
	mark int64
	end  bool
}

// parseLogMsg parses one line of the parent's stream (see streamLog).
func parseLogMsg(line string) (logMsg, error) {
	f := strings.Fields(line)
	num := func(i int) int64 {
		if i >= len(f) {
			return math.MinInt64
		}
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return math.MinInt64
		}
		return n
	}
	switch {
	case len(f) == 5 && f[0] == "w":
		m := logMsg{w: write{Row: int(num(1)), Version: num(2), Begin: num(3), Commit: num(4)}}
		if m.w.Row >= 0 && m.w.Version != math.MinInt64 && m.w.Begin != math.MinInt64 && m.w.Commit != math.MinInt64 {
			return m, nil
		}
	case len(f) == 2 && f[0] == "m":
		if m := num(1); m != math.MinInt64 {
			return logMsg{mark: m}, nil
		}
	case len(f) == 1 && f[0] == "end":
		return logMsg{end: true}, nil
	}
	return logMsg{}, fmt.Errorf("bad line from the parent: %.100q", line)
}

// A checkReader is a reader process's Group and connections.
type checkReader struct {
	j        checkJob
	inv      invalidation
	g        *pgflight.Group
	l        *pglock.Locker
	app      *pgxpool.Pool // the application's: fn reads the row on it
	lockPool *pgxpool.Pool // pglock's
	rdb      *redis.Client
	warn     *warnings
	sel      string // the select of a row's version
}

// runCheckReader is a reader process of the checker: it connects, says
// "ready" on stdout, waits for "go" on stdin, reads for the job's Duration
// while it checks every read against the log the parent streams on stdin,
// checks that every row converges to its last version, and writes its
// report on stdout as one JSON line.
func runCheckReader(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	var j checkJob
	if err := json.Unmarshal([]byte(os.Getenv(checkEnv)), &j); err != nil {
		return fmt.Errorf("bad %s: %w", checkEnv, err)
	}
	if j.Rows < 1 || j.Goroutines < 1 {
		return fmt.Errorf("check job: %d rows, %d goroutines", j.Rows, j.Goroutines)
	}
	c, err := newCheckReader(ctx, j)
	if err != nil {
		return err
	}
	defer c.close()
	if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
		return err
	}
	sc := bufio.NewScanner(stdin)
	if !sc.Scan() || sc.Text() != "go" {
		return fmt.Errorf("barrier: %w", errors.Join(sc.Err(), errors.New("no go")))
	}
	msgs := make(chan logMsg, 1024)
	var lineErr error // written before msgs closes
	go func() {
		defer close(msgs)
		for sc.Scan() {
			m, err := parseLogMsg(sc.Text())
			if err != nil {
				lineErr = err
				return
			}
			msgs <- m
		}
		lineErr = sc.Err()
	}()

	rep := &checkReport{PID: os.Getpid(), Latency: newHist()}
	a := newAnalysis(j.Rows, j.Bound, rep)
	batches := make(chan []read, 64)
	free := make(chan []read, 64)
	analyzed := make(chan error, 1)
	go func() { analyzed <- a.run(msgs, batches, free) }()
	t0 := time.Now()
	c.readAll(ctx, t0.Add(j.Duration), batches, free, rep)
	rep.Elapsed = since(t0)
	st := c.g.Stats()
	rep.Stats = &st
	close(batches)
	if err := <-analyzed; err != nil {
		return errors.Join(err, lineErr)
	}
	a.finish()
	rep.Unconverged = c.converge(ctx, a)
	rep.Warnings = c.warn.list()
	return json.NewEncoder(stdout).Encode(rep)
}

// newCheckReader connects and makes the Group: redisstore and pglock on a
// pool of its own, with the local tier if the job says so, and warms the
// lock session up.
func newCheckReader(ctx context.Context, j checkJob) (*checkReader, error) {
	inv, err := checkMode(j.Mode)
	if err != nil {
		return nil, err
	}
	c := &checkReader{j: j, inv: inv, warn: &warnings{}, sel: checkSQL(checkSelectSQL, j.Table)}
	opt, err := redis.ParseURL(j.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opt.ClientName = j.App
	c.rdb = redis.NewClient(opt)
	pool := func(app string) (*pgxpool.Pool, error) {
		cfg, err := pgxpool.ParseConfig(j.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("database url: %w", err)
		}
		cfg.ConnConfig.RuntimeParams["application_name"] = app
		return pgxpool.NewWithConfig(ctx, cfg)
	}
	if c.lockPool, err = pool(j.App); err != nil {
		c.close()
		return nil, err
	}
	if c.app, err = pool(j.App + "-app"); err != nil {
		c.close()
		return nil, err
	}
	c.l = pglock.New(c.lockPool)
	cfg := pgflight.Config{Cache: redisstore.New(c.rdb), Locker: c.l, Namespace: j.Namespace, TTL: checkTTL, Logger: slog.New(c.warn)}
	if j.LocalTier {
		cfg.Local = memstore.New()
	}
	if c.g, err = pgflight.New(cfg); err != nil {
		c.close()
		return nil, err
	}
	unlock, err := c.l.Lock(ctx, warmLockID+int64(j.Index))
	if err == nil {
		err = unlock(ctx)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("warm up pglock: %w", err)
	}
	return c, nil
}

// close closes what newCheckReader opened.
func (c *checkReader) close() {
	if c.g != nil {
		c.g.Close()
	}
	if c.l != nil {
		c.l.Close()
	}
	for _, p := range []*pgxpool.Pool{c.app, c.lockPool} {
		if p != nil {
			p.Close()
		}
	}
	c.rdb.Close()
}

// fetch reads row through the Group; fn reads its version from
// PostgreSQL. A value that is not a number is version -1.
func (c *checkReader) fetch(ctx context.Context, row int) (int64, error) {
	s, err := pgflight.Fetch(ctx, c.g, rowKey(row), func(ctx context.Context) (string, error) {
		var v int64
		err := c.app.QueryRow(ctx, c.sel, row).Scan(&v)
		return strconv.FormatInt(v, 10), err
	}, c.inv.options(row)...)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1, nil
	}
	return v, nil
}

// readAll runs the job's goroutines until stop, each reading random rows,
// pausing for the job's ReadPause after each, and handing its reads to the
// analyzer in batches. It counts errors,
// latencies and reads that went backwards into rep.
func (c *checkReader) readAll(ctx context.Context, stop time.Time, batches chan<- []read, free chan []read, rep *checkReport) {
	var mu sync.Mutex // guards rep's fields written here
	var wg sync.WaitGroup
	for i := range c.j.Goroutines {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(c.j.Seed, uint64(c.j.Index*c.j.Goroutines+i)))
			lat := newHist()
			seen := make([]int64, c.j.Rows) // the newest version of each row served to this goroutine
			var errs, backwards int64
			var first string
			b := make([]read, 0, batchReads)
			for end := int64(0); end < stop.UnixNano(); {
				row := rng.IntN(c.j.Rows)
				start := time.Now().UnixNano()
				v, err := c.fetch(ctx, row)
				end = time.Now().UnixNano()
				switch {
				case err != nil:
					if errs++; errs == 1 {
						first = err.Error()
					}
				default:
					lat.add(end - start)
					if v < seen[row] && v >= 0 {
						backwards++
					}
					seen[row] = max(seen[row], v)
					if b = append(b, read{row: int32(row), version: v, start: start, end: end}); len(b) == batchReads {
						batches <- b
						select {
						case b = <-free:
							b = b[:0]
						default:
							b = make([]read, 0, batchReads)
						}
					}
				}
				if c.j.ReadPause > 0 {
					time.Sleep(c.j.ReadPause)
				}
			}
			if len(b) > 0 {
				batches <- b
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Errors += errs
			rep.Backwards += backwards
			if rep.FirstError == "" {
				rep.FirstError = first
			}
			rep.Latency.merge(lat)
		})
	}
	wg.Wait()
}

// run is the analyzer: it logs the writes that msgs brings and checks each
// batch of reads once the watermark has passed its latest start, until the
// log has ended and batches is closed. It returns an error if msgs closes
// before the end of the log.
func (a *analysis) run(msgs <-chan logMsg, batches <-chan []read, free chan<- []read) error {
	var pending [][]read
	latest := func(b []read) int64 {
		var t int64 = math.MinInt64
		for _, rd := range b {
			t = max(t, rd.start)
		}
		return t
	}
	done := func(b []read) {
		for _, rd := range b {
			a.check(rd)
		}
		select {
		case free <- b:
		default:
		}
	}
	flush := func() {
		keep := pending[:0]
		for _, b := range pending {
			if latest(b) < a.mark {
				done(b)
			} else {
				keep = append(keep, b)
			}
		}
		clear(pending[len(keep):])
		pending = keep
	}
	for msgs != nil || batches != nil {
		select {
		case m, ok := <-msgs:
			switch {
			case !ok:
				return errors.New("the parent's log ended early")
			case m.end:
				a.mark, msgs = math.MaxInt64, nil
				flush()
			case m.mark != 0:
				a.mark = max(a.mark, m.mark)
				flush()
			default:
				a.logWrite(m.w)
			}
		case b, ok := <-batches:
			switch {
			case !ok:
				batches = nil
			case latest(b) < a.mark:
				done(b)
			default:
				pending = append(pending, b)
			}
		}
	}
	return nil
}

// converge reads every row until it is served the row's last version, for
// convergeTimeout at most, and returns how many rows never were.
func (c *checkReader) converge(ctx context.Context, a *analysis) int {
	deadline := time.Now().Add(convergeTimeout)
	left := 0
	for row := range c.j.Rows {
		for {
			v, err := c.fetch(ctx, row)
			if err == nil && v == a.last(row) {
				break
			}
			if time.Now().After(deadline) {
				left++
				break
			}
			time.Sleep(time.Millisecond) // polling a state that changes on its own; nothing to wait on
		}
	}
	return left
}
