package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/pglock"
)

// streamEvery is how often the parent sends the readers the writes logged
// since its last message, with a watermark.
const streamEvery = 5 * time.Millisecond

// A checkRun is one run of the checker in one configuration.
type checkRun struct {
	exe                   string // the binary to re-execute as readers
	databaseURL, redisURL string
	mode                  string // a key of invalidations
	localTier             bool
	rows                  int
	readers               int           // processes
	goroutines            int           // per reader
	writers               int           // goroutines of the parent
	writePause            time.Duration // how long a writer pauses after each COMMIT
	readPause             time.Duration // how long a reader goroutine pauses after each read
	duration              time.Duration
	bound                 time.Duration
	seed                  uint64
	stderr                io.Writer // the readers' stderr
}

// A checkResult is what a run measured: the parent's writes and the
// readers' checks, summed.
type checkResult struct {
	Mode      string        `json:"mode"`
	LocalTier bool          `json:"local_tier"`
	Duration  time.Duration `json:"duration"`
	Readers   int           `json:"readers"`
	Writes    int64         `json:"writes"`
	Sum       checkReport   `json:"sum"`     // the readers' reports, summed
	Reports   []checkReport `json:"reports"` // one per reader
}

// run runs the checker: it creates the table, starts the readers, releases
// them, runs the writers for r.duration while streaming their log to the
// readers, and collects the readers' reports. It drops the table and the
// Redis keys of its namespace when it returns.
func (r *checkRun) run(ctx context.Context) (*checkResult, error) {
	inv, err := checkMode(r.mode)
	if err != nil {
		return nil, err
	}
	var b [4]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	config := "shared"
	if r.localTier {
		config = "local"
	}
	j := checkJob{Mode: r.mode, LocalTier: r.localTier, Namespace: "pgflight-check." + id + "." + config,
		Table: "pgflight_check_" + id, App: "pgflight-check-" + id, DatabaseURL: r.databaseURL, RedisURL: r.redisURL,
		Rows: r.rows, Goroutines: r.goroutines, Duration: r.duration, Bound: r.bound, ReadPause: r.readPause, Seed: r.seed}

	pcfg, err := pgxpool.ParseConfig(r.databaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = j.App + "-writers"
	pcfg.MaxConns = int32(r.writers + 1)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	ropt, err := redis.ParseURL(r.redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	if err := setUpCheck(ctx, pool, j); err != nil {
		return nil, err
	}
	defer tearDownCheck(pool, rdb, j)

	var procs []*workerProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for i := range r.readers {
		rj := j
		rj.Index = i
		p, err := startReader(r.exe, rj, r.stderr)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	if err := releaseAll(ctx, procs); err != nil {
		return nil, err
	}
	stop := time.Now().Add(r.duration)
	log := &writeLog{}
	wctx, cancelWriters := context.WithCancel(ctx)
	defer cancelWriters()
	var wg sync.WaitGroup
	werrs := make([]error, r.writers)
	for i := range r.writers {
		wg.Go(func() {
			werrs[i] = writeRows(wctx, pool, inv, j, log, stop, r.writePause, mrand.NewPCG(r.seed, uint64(i)))
			if werrs[i] != nil {
				cancelWriters()
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	serr := streamLog(log, procs, writersDone)
	if serr != nil {
		cancelWriters()
	}
	<-writersDone
	if err := errors.Join(werrs...); err != nil {
		return nil, fmt.Errorf("writers: %w", err)
	}
	if serr != nil {
		return nil, serr
	}
	writes, err := log.check(r.rows)
	if err != nil {
		return nil, err
	}

	res := &checkResult{Mode: r.mode, LocalTier: r.localTier, Duration: r.duration, Readers: r.readers, Writes: int64(len(writes))}
	// Each reader ends its reads at its own deadline, then checks that every
	// row converges (within convergeTimeout).
	octx, cancel := context.WithTimeout(ctx, runSlack+convergeTimeout)
	defer cancel()
	for _, p := range procs {
		line, err := p.next(octx)
		if err != nil {
			return nil, p.failure("report", err)
		}
		var rep checkReport
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			return nil, fmt.Errorf("reader %d: bad report %.200q: %w", p.cmd.Process.Pid, line, err)
		}
		if err := p.wait(octx); err != nil {
			return nil, fmt.Errorf("reader %d: %w", p.cmd.Process.Pid, err)
		}
		res.Reports = append(res.Reports, rep)
		res.Sum.merge(rep)
	}
	return res, nil
}

// setUpCheck creates the run's table with its rows at version 0, and the
// outbox table if it is missing.
func setUpCheck(ctx context.Context, pool *pgxpool.Pool, j checkJob) error {
	if _, err := pool.Exec(ctx, checkSQL(checkCreateSQL, j.Table)); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	if _, err := pool.Exec(ctx, checkSQL(checkFillSQL, j.Table), j.Rows); err != nil {
		return fmt.Errorf("fill table: %w", err)
	}
	if err := pglock.CreateOutbox(ctx, pool); err != nil {
		return err
	}
	return nil
}

// tearDownCheck drops the run's table, its namespace's outbox rows left (none
// once every reader has handled them) and its Redis keys.
func tearDownCheck(pool *pgxpool.Pool, rdb *redis.Client, j checkJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool.Exec(ctx, checkSQL(checkDropSQL, j.Table))
	pool.Exec(ctx, "delete from pgflight_outbox where namespace = $1", j.Namespace)
	iter := rdb.Scan(ctx, 0, j.Namespace+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}

// writeRows is one writer: until stop, it updates a random row and
// invalidates it in one transaction, logs the write once COMMIT has
// returned, and pauses for pause. Any error ends it: a COMMIT that fails leaves the write's
// outcome unknown, which the check cannot allow.
func writeRows(ctx context.Context, pool *pgxpool.Pool, inv invalidation, j checkJob, log *writeLog, stop time.Time, pause time.Duration, src mrand.Source) error {
	rng := mrand.New(src)
	update := checkSQL(checkUpdateSQL, j.Table)
	for time.Now().Before(stop) {
		row := rng.IntN(j.Rows)
		begin := time.Now().UnixNano()
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		var v int64
		if err := tx.QueryRow(ctx, update, row).Scan(&v); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return fmt.Errorf("update: %w", err)
		}
		if err := inv.invalidate(ctx, tx, j.Namespace, row); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		log.add(write{Row: row, Version: v, Begin: begin})
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// A writeLog is the writers' log. It is safe for concurrent use.
type writeLog struct {
	mu     sync.Mutex
	writes []write
}

// add logs w, stamping it with the time now as its Commit. The stamp is
// read under the lock, so a watermark read later under the lock (since) is
// later than the Commit of every write logged, and earlier than that of
// every write not logged yet.
func (l *writeLog) add(w write) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.Commit = time.Now().UnixNano()
	l.writes = append(l.writes, w)
}

// since returns the writes logged after the first i, and a watermark: every
// write whose Commit is earlier is among the first i+len(ws).
func (l *writeLog) since(i int) (ws []write, mark int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes[i:len(l.writes):len(l.writes)], time.Now().UnixNano()
}

// check returns the log once the writers are done, after checking that the
// versions of each of rows rows are 1..n: each one written once.
func (l *writeLog) check(rows int) ([]write, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := make([]map[int64]bool, rows)
	for _, w := range l.writes {
		if seen[w.Row] == nil {
			seen[w.Row] = map[int64]bool{}
		}
		if seen[w.Row][w.Version] {
			return nil, fmt.Errorf("row %d: version %d written twice: %w", w.Row, w.Version, errWriteGap)
		}
		seen[w.Row][w.Version] = true
	}
	for row, s := range seen {
		for v := range int64(len(s)) {
			if !s[v+1] {
				return nil, fmt.Errorf("row %d: %d writes but no version %d: %w", row, len(s), v+1, errWriteGap)
			}
		}
	}
	return l.writes, nil
}

// streamLog sends every reader the writes as they are logged, every
// streamEvery, each batch followed by its watermark ("w row version begin
// commit" lines, then "m watermark"), until done is closed; then the last
// writes and "end".
func streamLog(log *writeLog, procs []*workerProc, done <-chan struct{}) error {
	tick := time.NewTicker(streamEvery)
	defer tick.Stop()
	sent := 0
	var b strings.Builder
	for {
		var last bool
		select {
		case <-tick.C:
		case <-done:
			last = true
		}
		ws, mark := log.since(sent)
		sent += len(ws)
		b.Reset()
		for _, w := range ws {
			fmt.Fprintf(&b, "w %d %d %d %d\n", w.Row, w.Version, w.Begin, w.Commit)
		}
		fmt.Fprintf(&b, "m %d\n", mark)
		if last {
			b.WriteString("end\n")
		}
		for _, p := range procs {
			if _, err := io.WriteString(p.stdin, b.String()); err != nil {
				return p.failure("stream", err)
			}
		}
		if last {
			return nil
		}
	}
}

// startReader starts a reader process for j, which connects and then says
// "ready".
func startReader(exe string, j checkJob, stderr io.Writer) (*workerProc, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return startProc(exe, checkEnv+"="+string(b), stderr, nil)
}
