package pgflight_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// Issue 10 item 4: a tag invalidated in one process is seen by all. Three
// workers each hold a local copy of a key tagged t; the parent invalidates
// t, in five ways, one per round: Group.InvalidateTags, pglock.InvalidateTags
// in a committed transaction, the same committed by a process SIGKILLed
// right after COMMIT, Group.Clear, and pglock.Clear in a transaction. In
// every round every worker stops being served the old value, and the key
// is computed exactly once in the fleet.
func TestMultiProcessTags(t *testing.T) {
	ns, key := namespace(t), "k"
	ctx := context.Background()
	pool := newPool(t)
	locker := pglock.New(pool)
	t.Cleanup(func() { locker.Close() })
	rdb := newRedis(t)
	g := newGroup(t, pgflight.Config{Namespace: ns, Cache: redisstore.New(rdb), Locker: locker})
	if _, err := pgflight.Fetch(ctx, g, key, func(context.Context) (string, error) { return "v1", nil }, pgflight.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	inTx := func(f func(tx pglock.Execer) error) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if err := f(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	rounds := []struct {
		name       string
		invalidate func() error
	}{
		{"Group.InvalidateTags", func() error { return g.InvalidateTags(ctx, "t") }},
		{"pglock.InvalidateTags", func() error {
			return inTx(func(tx pglock.Execer) error { return pglock.InvalidateTags(ctx, tx, ns, "t") })
		}},
		{"committed then SIGKILLed", func() error {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=tags", childNS+"="+ns, childKey+"="+key, "PGFLIGHT_CHILD_TX=commit",
				childDB+"="+testserver.PostgresURL(t), childRDB+"="+testserver.RedisURL(t))
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil && err.Error() != "signal: killed" {
				return err
			}
			return nil
		}},
		{"Group.Clear", func() error { return g.Clear(ctx) }},
		{"pglock.Clear", func() error {
			return inTx(func(tx pglock.Execer) error { return pglock.Clear(ctx, tx, ns) })
		}},
	}
	ws := startWorkers(t, 3, "tags", ns, key, 1)
	release(ws)
	held := "v1"
	for i, r := range rounds {
		for _, line := range waitEach(t, ws, "holding ") {
			if line != "holding "+held+" true" {
				t.Fatalf("round %d (%s): worker said %q, want it to hold %q in its local tier", i+1, r.name, line, held)
			}
		}
		before := redisCounter(t, ns)
		if err := r.invalidate(); err != nil {
			t.Fatalf("round %d (%s): %v", i+1, r.name, err)
		}
		seen := waitEach(t, ws, "saw ")
		for _, line := range seen {
			if line != seen[0] {
				t.Errorf("round %d (%s): workers saw %q, want one value", i+1, r.name, seen)
				break
			}
		}
		if n := redisCounter(t, ns) - before; n != 1 {
			t.Errorf("round %d (%s): %d computations in the fleet, want 1", i+1, r.name, n)
		}
		held = strings.TrimPrefix(seen[0], "saw ")
		for _, wk := range ws {
			if i < len(rounds)-1 {
				wk.stdin.WriteString("go\n")
			} else {
				wk.stdin.WriteString("done\n")
			}
		}
	}
	for _, res := range results(t, ws) {
		if len(res.Errors) > 0 || len(res.Values) != len(rounds) {
			t.Errorf("worker result %+v, want one new value per round", res)
		}
	}
}

// WithConsistentRead: a read that begins after the COMMIT of a tag's
// invalidation returned is never served the value it invalidated, even
// from a local tier, with no wait for the notification. Each round the
// worker reads twice (the second is a hit on its local tier), then the
// parent commits an invalidation and at once asks for a third read, which
// must compute.
func TestMultiProcessConsistentRead(t *testing.T) {
	ns, key := namespace(t), "k"
	ctx := context.Background()
	pool := newPool(t)
	ws := startWorkers(t, 1, "consistent", ns, key, 1)
	release(ws)
	waitEach(t, ws, "live")
	wk := ws[0]
	read := func() string {
		wk.stdin.WriteString("read\n")
		return strings.TrimPrefix(waitEach(t, ws, "read ")[0], "read ")
	}
	stale := 0
	for i := range 30 {
		v := read()
		if again := read(); again != v {
			t.Fatalf("round %d: a read with nothing invalidated = %q, want the hit %q", i, again, v)
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := pglock.InvalidateTags(ctx, tx, ns, "t"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if read() == v {
			stale++
		}
	}
	if stale > 0 {
		t.Errorf("%d of 30 reads begun after an invalidation's COMMIT were served the invalidated value", stale)
	}
	wk.stdin.WriteString("done\n")
	results(t, ws)
}
