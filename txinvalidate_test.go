package pgflight

// These tests are in package pgflight, to see a Group's tier and its
// handler. They import the backends, none of which imports pgflight.

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// txFixture is a namespace whose value is computed from a row of table
// pgflight_txtest, and a Group of the test process without a local tier
// that computes and stores it (so that storing broadcasts nothing).
type txFixture struct {
	ns, key string
	db      *pgxpool.Pool
	rdb     *redis.Client
	g       *Group
	calls   atomic.Int64
}

func newTxFixture(tb testing.TB) *txFixture {
	tb.Helper()
	ctx := context.Background()
	f := &txFixture{
		ns:  strings.ReplaceAll(tb.Name(), "/", ".") + "." + time.Now().Format("150405.000000"),
		key: "row",
		db:  txPool(tb, testserver.PostgresURL(tb)),
	}
	opt, err := redis.ParseURL(testserver.RedisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	f.rdb = redis.NewClient(opt)
	tb.Cleanup(func() { f.rdb.Close() })
	if _, err := f.db.Exec(ctx, "create table if not exists pgflight_txtest (id text primary key, v int not null)"); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.db.Exec(ctx, "insert into pgflight_txtest values ($1, 1)", f.ns); err != nil {
		tb.Fatal(err)
	}
	f.g = txGroup(tb, Config{Namespace: f.ns, Cache: redisstore.New(f.rdb), Locker: txLocker(tb, f.db)})
	return f
}

// fetch returns the value through g, computing it from the row on a miss.
func (f *txFixture) fetch(tb testing.TB, g *Group) string {
	tb.Helper()
	v, err := Fetch(context.Background(), g, f.key, func(ctx context.Context) (string, error) {
		f.calls.Add(1)
		var v int
		err := f.db.QueryRow(ctx, "select v from pgflight_txtest where id = $1", f.ns).Scan(&v)
		return strconv.Itoa(v), err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// update changes the row and invalidates the key in one transaction, and
// commits it or rolls it back.
func (f *txFixture) update(tb testing.TB, commit bool, keys ...string) {
	tb.Helper()
	ctx := context.Background()
	tx, err := f.db.Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "update pgflight_txtest set v = v + 1 where id = $1", f.ns); err != nil {
		tb.Fatal(err)
	}
	if err := pglock.Invalidate(ctx, tx, f.ns, keys...); err != nil {
		tb.Fatal(err)
	}
	if commit {
		err = tx.Commit(ctx)
	} else {
		err = tx.Rollback(ctx)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// shared reports whether the shared Cache (Redis) holds key's entry.
func (f *txFixture) shared(tb testing.TB, key string) bool {
	tb.Helper()
	n, err := f.rdb.Exists(context.Background(), cacheKey(f.ns, key)).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return n == 1
}

// rows returns how many outbox rows of the namespace are left.
func (f *txFixture) rows(tb testing.TB) int {
	tb.Helper()
	var n int
	if err := f.db.QueryRow(context.Background(), "select count(*) from pgflight_outbox where namespace = $1", f.ns).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// waitRows waits until the namespace has n outbox rows left, failing tb
// after 20 s.
func (f *txFixture) waitRows(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.rows(tb) != n {
		if time.Now().After(deadline) {
			tb.Fatalf("outbox rows left = %d after 20 s, want %d", f.rows(tb), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func txPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

func txLocker(tb testing.TB, pool *pgxpool.Pool) *pglock.Locker {
	l := pglock.New(pool)
	tb.Cleanup(func() { l.Close() })
	return l
}

func txGroup(tb testing.TB, cfg Config) *Group {
	tb.Helper()
	g, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

// txWorker is a worker process of kind txinvalidate (multiproc_test.go).
type txWorker struct {
	cmd   *exec.Cmd
	stdin *os.File
	lines chan string
}

// startTxWorker starts a worker in mode ("hold" or "commit") and waits
// until it is ready.
func startTxWorker(tb testing.TB, f *txFixture, mode string) *txWorker {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGFLIGHT_CHILD=txinvalidate", "PGFLIGHT_CHILD_TX="+mode,
		"PGFLIGHT_CHILD_NAMESPACE="+f.ns, "PGFLIGHT_CHILD_KEY="+f.key,
		testserver.DatabaseURLEnv+"="+testserver.PostgresURL(tb), testserver.RedisURLEnv+"="+testserver.RedisURL(tb))
	cmd.Stdin, cmd.Stderr = r, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r.Close()
	wk := &txWorker{cmd: cmd, stdin: w, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			wk.lines <- sc.Text()
		}
		close(wk.lines)
	}()
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	wk.expect(tb, "ready")
	return wk
}

// next returns the worker's next line.
func (wk *txWorker) next(tb testing.TB) string {
	tb.Helper()
	select {
	case line, ok := <-wk.lines:
		if !ok {
			tb.Fatalf("worker %d ended", wk.cmd.Process.Pid)
		}
		return line
	case <-time.After(20 * time.Second):
		tb.Fatalf("worker %d said nothing for 20 s", wk.cmd.Process.Pid)
		return ""
	}
}

func (wk *txWorker) expect(tb testing.TB, want string) {
	tb.Helper()
	if got := wk.next(tb); got != want {
		tb.Fatalf("worker %d said %q, want %q", wk.cmd.Process.Pid, got, want)
	}
}

// Issue 10.3 and 10.5: three processes hold a local copy of a value
// computed from a row. An update of the row that invalidates the key in
// its transaction drops every copy and the shared entry at COMMIT, and
// the next Fetch computes from the new row: first committed by this
// process, then by a process SIGKILLed as soon as its COMMIT returned,
// whose invalidation the others carry out.
func TestTxInvalidateMultiProcess(t *testing.T) {
	f := newTxFixture(t)
	if v := f.fetch(t, f.g); v != "1" {
		t.Fatalf("first value = %q, want 1", v)
	}
	ws := make([]*txWorker, 3)
	for i := range ws {
		ws[i] = startTxWorker(t, f, "hold")
	}
	round := func(want string) {
		t.Helper()
		for _, wk := range ws {
			wk.stdin.WriteString("go\n")
		}
		for _, wk := range ws {
			if got := wk.next(t); got != "local "+want+" true" {
				t.Fatalf("worker said %q, want it to hold a local copy of %s", got, want)
			}
		}
	}
	invalidated := func(by string, want string) {
		t.Helper()
		for _, wk := range ws {
			wk.expect(t, "invalidated")
		}
		if f.shared(t, f.key) {
			t.Errorf("%s: the shared entry survived the invalidation", by)
		}
		before := f.calls.Load()
		if v := f.fetch(t, f.g); v != want || f.calls.Load() != before+1 {
			t.Errorf("%s: next Fetch = %q with %d computations, want %s computed once", by, v, f.calls.Load()-before, want)
		}
		f.waitRows(t, 0)
	}

	round("1")
	f.update(t, true, f.key)
	invalidated("commit", "2")

	round("2")
	killed := startTxWorker(t, f, "commit")
	killed.stdin.WriteString("go\n")
	err := killed.cmd.Wait()
	if ws, ok := killed.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("committing worker ended with %v, want SIGKILL", err)
	}
	invalidated("commit of a killed process", "3")

	for _, wk := range ws {
		wk.stdin.WriteString("done\n")
		wk.stdin.Close()
	}
	for _, wk := range ws {
		for line := range wk.lines {
			res, ok := strings.CutPrefix(line, "result ")
			if !ok {
				continue
			}
			var r struct {
				Errors       []string
				Computations uint64
			}
			if err := json.Unmarshal([]byte(res), &r); err != nil || len(r.Errors) > 0 || r.Computations != 0 {
				t.Errorf("worker result %s (%v), want no errors and no computation", res, err)
			}
		}
	}
}

// An invalidation rolled back does nothing: the entry and the local copy
// stay, and no outbox row is left; an invalidation committed after it (of
// another key) shows the handler has run meanwhile.
func TestTxInvalidateRollback(t *testing.T) {
	f := newTxFixture(t)
	local := memstore.New()
	t.Cleanup(func() { local.Close() })
	g := txGroup(t, Config{Namespace: f.ns, Cache: redisstore.New(f.rdb), Locker: txLocker(t, txPool(t, testserver.PostgresURL(t))),
		Local: local, LocalTTL: time.Hour})
	copyOf := func(key string) bool { _, ok, _ := local.Get(context.Background(), key); return ok }
	for !g.tier.isLive() {
		time.Sleep(time.Millisecond)
	}
	f.fetch(t, g)
	if _, err := Fetch(context.Background(), g, "barrier", func(context.Context) (string, error) { return "b", nil }); err != nil {
		t.Fatal(err)
	}
	if !copyOf(f.key) || !copyOf("barrier") {
		t.Fatal("no local copies to invalidate")
	}
	f.update(t, false, f.key)
	f.update(t, true, "barrier")
	deadline := time.Now().Add(20 * time.Second)
	for copyOf("barrier") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if copyOf("barrier") || f.shared(t, "barrier") {
		t.Fatal("the committed invalidation was not handled")
	}
	if !copyOf(f.key) || !f.shared(t, f.key) {
		t.Errorf("after a rollback: local copy %t, shared entry %t, want both kept", copyOf(f.key), f.shared(t, f.key))
	}
	before := f.calls.Load()
	if v := f.fetch(t, g); v != "1" || f.calls.Load() != before {
		t.Errorf("Fetch after a rollback = %q, computed %d times, want 1 from the cache", v, f.calls.Load()-before)
	}
	f.waitRows(t, 0)
}

// A Group whose Cache cannot delete, or whose Locker is not an
// InvalidationSource, handles nothing and its stop does nothing.
func TestTxInvalidateNeedsDeleterAndSource(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no source":  {Cache: memstore.New()},
		"no deleter": {Cache: struct{ Cache }{memstore.New()}, Locker: txLocker(t, txPool(t, testserver.PostgresURL(t)))},
	} {
		g := txGroup(t, cfg)
		stop, err := g.handleTxInvalidations()
		if err != nil || stop == nil {
			t.Errorf("%s: handleTxInvalidations = %v, %v, want a stop and no error", name, stop == nil, err)
			continue
		}
		stop()
	}
}

// fanoutLocal is a local tier that reports when it drops key.
type fanoutLocal struct {
	*memstore.Store
	key     string
	dropped chan struct{}
}

func (l *fanoutLocal) Delete(ctx context.Context, key string) error {
	err := l.Store.Delete(ctx, key)
	if key == l.key {
		select {
		case l.dropped <- struct{}{}:
		default:
		}
	}
	return err
}

func (l *fanoutLocal) Clear(ctx context.Context) error {
	err := l.Store.Clear(ctx)
	select {
	case l.dropped <- struct{}{}:
	default:
	}
	return err
}

// BenchmarkTxInvalidationFanout measures issue 10's fan-out: from the
// COMMIT of a transaction that invalidates a key to the last of 8 Groups
// (each with a Locker, lock session and pool of its own, as 8 processes
// have) having dropped its local copy. Each op is one round: the value
// stored by a Group without a tier, read into every tier, then the
// commit. Reports p50 and p99 in ms.
//
//	go test -run '^$' -bench TxInvalidationFanout -benchtime 100x .
func BenchmarkTxInvalidationFanout(b *testing.B) {
	const groups = 8
	f := newTxFixture(b)
	ctx := context.Background()
	tiers := make([]*fanoutLocal, groups)
	gs := make([]*Group, groups)
	for i := range gs {
		tiers[i] = &fanoutLocal{Store: memstore.New(), key: f.key, dropped: make(chan struct{}, 1)}
		b.Cleanup(func() { tiers[i].Close() })
		gs[i] = txGroup(b, Config{Namespace: f.ns, Cache: redisstore.New(f.rdb), Locker: txLocker(b, txPool(b, testserver.PostgresURL(b))),
			Local: tiers[i], LocalTTL: time.Hour})
	}
	for _, g := range gs {
		for !g.tier.isLive() {
			time.Sleep(time.Millisecond)
		}
	}
	var lat []time.Duration
	for b.Loop() {
		f.fetch(b, f.g)
		for i, g := range gs {
			f.fetch(b, g)
			if _, ok, _ := tiers[i].Get(ctx, tiers[i].key); !ok {
				b.Fatalf("group %d kept no local copy", i)
			}
			select { // a drop from the last round
			case <-tiers[i].dropped:
			default:
			}
		}
		tx, err := f.db.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := pglock.Invalidate(ctx, tx, f.ns, f.key); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		for i := range tiers {
			select {
			case <-tiers[i].dropped:
			case <-time.After(20 * time.Second):
				b.Fatalf("group %d never dropped its copy", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d rounds, %d groups: p50 %.2f ms, p99 %.2f ms, max %.2f ms", len(lat), groups, pct(0.5), pct(0.99), pct(1))
}
