package pgflight_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// tagFixture counts the computations of each key, whose value is its
// computation's number.
type tagFixture struct {
	g     *pgflight.Group
	calls atomic.Int64
}

func (f *tagFixture) fetch(tb testing.TB, key string, opts ...pgflight.Option) string {
	tb.Helper()
	v, err := pgflight.Fetch(context.Background(), f.g, key, func(context.Context) (string, error) {
		return fmt.Sprintf("%s #%d", key, f.calls.Add(1)), nil
	}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// Issue 10 item 4, in one process: an entry stored with tag T before T was
// invalidated is a miss afterwards; other tags' entries stay; Clear makes
// every entry a miss; an entry's own tags are checked whatever the hit's
// options. Run on the embedded default, on a local tier, and on Redis with
// pglock (the versions in PostgreSQL).
func TestTags(t *testing.T) {
	configs := map[string]func(t *testing.T) pgflight.Config{
		"embedded": func(*testing.T) pgflight.Config { return pgflight.Config{} },
		"local tier": func(t *testing.T) pgflight.Config {
			local := memstore.New()
			t.Cleanup(func() { local.Close() })
			return pgflight.Config{Local: local, LocalTTL: time.Hour}
		},
		"pglock": func(t *testing.T) pgflight.Config {
			locker := pglock.New(newPool(t))
			t.Cleanup(func() { locker.Close() })
			local := memstore.New()
			t.Cleanup(func() { local.Close() })
			return pgflight.Config{Cache: redisstore.New(newRedis(t)), Locker: locker, Local: local, LocalTTL: time.Hour}
		},
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := &tagFixture{g: newGroup(t, cfg(t))}
			a := f.fetch(t, "a", pgflight.WithTags("user:1", "team:1"))
			b := f.fetch(t, "b", pgflight.WithTags("user:2"))
			c := f.fetch(t, "c")
			for i := 0; i < 2; i++ { // the second from the local tier, if any
				if got := f.fetch(t, "a"); got != a {
					t.Fatalf("hit on a = %q, want %q", got, a)
				}
			}
			if err := f.g.InvalidateTags(ctx, "team:1"); err != nil {
				t.Fatal(err)
			}
			if got := f.fetch(t, "a"); got == a {
				t.Errorf("a after invalidating its tag team:1 = %q, the old value", got)
			}
			if got := f.fetch(t, "b"); got != b {
				t.Errorf("b (tag user:2) after invalidating team:1 = %q, want %q", got, b)
			}
			if got := f.fetch(t, "c"); got != c {
				t.Errorf("c (no tags) after invalidating team:1 = %q, want %q", got, c)
			}
			a2 := f.fetch(t, "a") // stored with no tags: they are the call's
			if err := f.g.InvalidateTags(ctx, "user:1", "user:2"); err != nil {
				t.Fatal(err)
			}
			if got := f.fetch(t, "a"); got != a2 {
				t.Errorf("a, stored untagged, after invalidating user:1 = %q, want %q", got, a2)
			}
			if got := f.fetch(t, "b"); got == b {
				t.Errorf("b after invalidating user:2 = %q, the old value", got)
			}
			before := map[string]string{"a": f.fetch(t, "a"), "b": f.fetch(t, "b"), "c": f.fetch(t, "c")}
			if err := f.g.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			for k, old := range before {
				if got := f.fetch(t, k); got == old {
					t.Errorf("%s after Clear = %q, the old value", k, got)
				}
				if v, ok, err := pgflight.Get[string](ctx, f.g, k); !ok || err != nil || v == old {
					t.Errorf("Get(%s) after Clear and a Fetch = %q, %v, %v; want the new value", k, v, ok, err)
				}
			}
			// a twice, b once, then a, b and c after Clear.
			st := f.g.Stats()
			if st.TagMisses < 5 {
				t.Errorf("Stats.TagMisses = %d, want at least 5", st.TagMisses)
			}
			if learns := name == "pglock"; (st.TagLookups > 0) != learns {
				t.Errorf("Stats.TagLookups = %d; want some only with pglock, which keeps the versions", st.TagLookups)
			}
		})
	}
}

// A computation that began before InvalidateTags stores a value read before
// it: that value is a miss afterwards, though it was stored after.
func TestTagsComputationInFlight(t *testing.T) {
	ctx := context.Background()
	f := &tagFixture{g: newGroup(t, pgflight.Config{})}
	started, finish := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		v, _ := pgflight.Fetch(ctx, f.g, "k", func(context.Context) (string, error) {
			close(started)
			<-finish
			return "read before the invalidation", nil
		}, pgflight.WithTags("t"))
		done <- v
	}()
	<-started
	if err := f.g.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	close(finish)
	if v := <-done; v != "read before the invalidation" {
		t.Fatalf("the computation's caller got %q", v)
	}
	if got := f.fetch(t, "k", pgflight.WithTags("t")); got != "k #1" {
		t.Errorf("Fetch after the invalidation = %q, want a new computation", got)
	}
	if got := f.fetch(t, "k", pgflight.WithTags("t")); got != "k #1" {
		t.Errorf("Fetch of the recomputed value = %q, want a hit", got)
	}
}

// Set, FetchMany and Expire keep tags: Set's and FetchMany's entries carry
// the call's tags, and Expire keeps the entry's.
func TestTagsEveryPath(t *testing.T) {
	ctx := context.Background()
	g := newGroup(t, pgflight.Config{StaleTTL: time.Hour})
	if err := pgflight.Set(ctx, g, "set", "v", pgflight.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	many, err := pgflight.FetchMany(ctx, g, []string{"m1", "m2"}, func(_ context.Context, keys []string) (map[string]string, error) {
		return map[string]string{"m1": "v", "m2": "v"}, nil
	}, pgflight.WithTags("t"))
	if err != nil || len(many) != 2 {
		t.Fatalf("FetchMany = %v, %v", many, err)
	}
	if err := pgflight.Set(ctx, g, "expired", "v", pgflight.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	if err := pgflight.Expire(ctx, g, "expired"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"set", "m1", "m2", "expired"} {
		if _, ok, err := pgflight.Get[string](ctx, g, k); !ok || err != nil {
			t.Fatalf("Get(%s) before the invalidation = %v, %v; want found", k, ok, err)
		}
	}
	if err := g.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"set", "m1", "m2", "expired"} {
		if v, ok, err := pgflight.Get[string](ctx, g, k); ok || err != nil {
			t.Errorf("Get(%s) after invalidating its tag = %q, %v, %v; want not found", k, v, ok, err)
		}
	}
}

// Bad tags are refused with a clear error, and store nothing.
func TestTagsRefused(t *testing.T) {
	ctx := context.Background()
	g := newGroup(t, pgflight.Config{})
	calls := 0
	fn := func(context.Context) (string, error) { calls++; return "v", nil }
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	for name, tags := range map[string][]string{
		"empty tag": {"a", ""},
		"long tag":  {strings.Repeat("x", 257)},
		"65 tags":   many,
	} {
		if _, err := pgflight.Fetch(ctx, g, "k", fn, pgflight.WithTags(tags...)); err == nil || !strings.Contains(err.Error(), "WithTags") {
			t.Errorf("Fetch WithTags(%s) = %v, want an error naming WithTags", name, err)
		}
		if err := g.InvalidateTags(ctx, tags...); !errors.Is(err, pgflight.ErrInvalidKey) {
			t.Errorf("InvalidateTags(%s) = %v, want ErrInvalidKey", name, err)
		}
	}
	if calls != 0 {
		t.Errorf("fn called %d times with bad tags", calls)
	}
	if err := g.InvalidateTags(ctx); err != nil {
		t.Errorf("InvalidateTags() = %v, want a no-op", err)
	}
	g.Close()
	if err := g.Clear(ctx); !errors.Is(err, pgflight.ErrClosed) {
		t.Errorf("Clear after Close = %v, want ErrClosed", err)
	}
}

// A tag invalidation whose notification never arrives (here: the version
// bumped behind pglock's back) is not seen until the next gap; the gap (the
// lock session cut) makes the Group forget every version it knew, and the
// next read learns the new one. RELIABILITY.md row 16b.
func TestTagsForgottenAfterGap(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	locker := pglock.New(pool)
	t.Cleanup(func() { locker.Close() })
	f := &tagFixture{g: newGroup(t, pgflight.Config{Cache: redisstore.New(newRedis(t)), Locker: locker})}
	if err := f.g.InvalidateTags(ctx, "t"); err != nil { // the row exists, and the Group knows version 1
		t.Fatal(err)
	}
	old := f.fetch(t, "k", pgflight.WithTags("t"))
	if _, err := pool.Exec(ctx, "update pgflight_tags set version = version + 1 where namespace = $1 and tag = 't'", f.g.Namespace()); err != nil {
		t.Fatal(err)
	}
	if got := f.fetch(t, "k", pgflight.WithTags("t")); got != old {
		t.Fatalf("Fetch with no notification = %q, want the held version's hit %q", got, old)
	}
	drops := locker.Stats().Gaps
	if _, err := pool.Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where application_name like '%pgflight-lock%'"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session listens again", func() bool { return locker.Stats().Gaps >= drops+2 })
	// A consistent read waits for the gaps' delivery, which runs apart.
	if got := f.fetch(t, "k", pgflight.WithTags("t"), pgflight.WithConsistentRead()); got == old {
		t.Errorf("Fetch after the gap = %q, the value of the old version", got)
	}
}

// PostgreSQL down: a Group that cannot learn a tag's version serves the
// entry it has unchecked (fail open), logs once, and asks again only after
// a pause, not on every hit; once the server is back it checks again.
func TestTagsDatabaseDown(t *testing.T) {
	pg, err := testserver.StartPostgres(testserver.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	locker := pglock.New(pool)
	t.Cleanup(func() { locker.Close() })
	logs := &leakLog{}
	f := &tagFixture{g: newGroup(t, pgflight.Config{Locker: locker, Logger: slog.New(slog.NewTextHandler(logs, nil))})}
	old := f.fetch(t, "k", pgflight.WithTags("t"))
	gaps := locker.Stats().Gaps
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lock session lost", func() bool { return locker.Stats().Gaps > gaps })
	lookups := f.g.Stats().TagLookups
	for range 20 {
		if got := f.fetch(t, "k", pgflight.WithTags("t")); got != old {
			t.Fatalf("Fetch with PostgreSQL down = %q, want the entry held, %q", got, old)
		}
	}
	if n := f.g.Stats().TagLookups - lookups; n > 2 {
		t.Errorf("%d tag lookups for 20 hits with PostgreSQL down, want at most 1 (then a pause)", n)
	}
	if logged := logs.String(); !strings.Contains(logged, "could not learn the versions of tags") {
		t.Errorf("nothing logged: %q", logged)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	// A consistent read waits for the session to be back and its gap
	// delivered, so no forgetting comes after the invalidation below.
	f.fetch(t, "k", pgflight.WithTags("t"), pgflight.WithConsistentRead())
	if err := f.g.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if got := f.fetch(t, "k", pgflight.WithTags("t")); got == old {
		t.Errorf("Fetch after the server came back and t was invalidated = %q, the old value", got)
	}
}
