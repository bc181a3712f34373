package pgflight_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// Issue 10.1: a Delete racing a computation in another process is ordered
// after it. The worker computes "old" from data read before the Delete;
// the Delete waits for that computation, so its value, stored before the
// release, is deleted, and the next Fetch computes afresh. Without the
// ordering the Delete returns at once and the worker's "old" is stored
// after it and served.
func TestMultiProcessDeleteOrdersAfterComputation(t *testing.T) {
	ns, key := namespace(t), "k"
	ws := startWorkers(t, 1, "slowcompute", ns, key, 1)
	release(ws)
	waitForLine(t, ws, "computing")

	locker := pglock.New(newPool(t))
	t.Cleanup(func() { locker.Close() })
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: redisstore.New(newRedis(t)), Locker: locker})
	deleted := make(chan error, 1)
	go func() { deleted <- g.Delete(context.Background(), key) }()
	eventually(t, "the Delete waits for the worker's computation", func() bool { return locker.Stats().Awaited == 1 })
	ws[0].stdin.WriteString("finish\n")
	if err := <-deleted; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if r := results(t, ws)[0]; r.Values["old"] != 1 {
		t.Fatalf("worker: %+v, want it to have computed old", r)
	}
	v, err := pgflight.Fetch(context.Background(), g, key, func(context.Context) (string, error) { return "new", nil })
	if err != nil || v != "new" {
		t.Errorf("Fetch after Delete = %q, %v; want new, computed from data read after the Delete", v, err)
	}
}

// waitEach waits until every worker has said want.
func waitEach(t *testing.T, ws []*worker, want string) []string {
	t.Helper()
	var got []string
	for _, wk := range ws {
		for {
			select {
			case line, ok := <-wk.lines:
				if !ok {
					t.Fatalf("worker %d ended before saying %q", wk.cmd.Process.Pid, want)
				}
				if !strings.HasPrefix(line, want) {
					continue
				}
				got = append(got, line)
			case <-time.After(time.Minute):
				t.Fatalf("worker %d never said %q", wk.cmd.Process.Pid, want)
			}
			break
		}
	}
	return got
}

// Issue 10.2 and 10.5: three processes' local tiers hold a value; a Delete
// in a fourth drops every copy, and no process serves the old value after
// it. Then every lock session is cut: every local tier is dropped whole.
func TestMultiProcessLocalTier(t *testing.T) {
	ns, key := namespace(t), "k"
	locker := pglock.New(newPool(t))
	t.Cleanup(func() { locker.Close() })
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: redisstore.New(newRedis(t)), Locker: locker})
	if _, err := pgflight.Fetch(context.Background(), g, key, func(context.Context) (string, error) { return "v1", nil }); err != nil {
		t.Fatal(err)
	}
	ws := startWorkers(t, 3, "localtier", ns, key, 1)
	release(ws)
	for _, line := range waitEach(t, ws, "local ") {
		if line != "local v1 1" {
			t.Fatalf("worker said %q, want its second Fetch served v1 by its local tier", line)
		}
	}
	if err := g.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	waitEach(t, ws, "invalidated")
	for _, wk := range ws {
		wk.stdin.WriteString("again\n")
	}
	waitEach(t, ws, "armed")
	admin := newPool(t)
	if _, err := admin.Exec(context.Background(),
		"select pg_terminate_backend(pid) from pg_stat_activity where application_name like '%pgflight-lock%'"); err != nil {
		t.Fatal(err)
	}
	waitEach(t, ws, "dropped")
	for _, r := range results(t, ws) {
		for v := range r.Values {
			if v == "v1" {
				t.Errorf("a worker was served %q after the Delete", v)
			}
		}
		if len(r.Errors) > 0 || len(r.Values) != 1 {
			t.Errorf("worker result %+v, want one value", r)
		}
	}
}
