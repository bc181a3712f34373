package pgflight_test

import (
	"context"
	"testing"

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
