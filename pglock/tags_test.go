package pglock_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/pglock"
)

var _ pgflight.TagSource = (*pglock.Locker)(nil)

// watched collects what WatchTags hands to forget.
type watched struct {
	forgot chan []string
	live   chan struct{}
}

func watch(tb testing.TB, l *pglock.Locker, ns string) *watched {
	tb.Helper()
	w := &watched{forgot: make(chan []string, 100), live: make(chan struct{}, 10)}
	stop, err := l.WatchTags(ns, func(tags []string) { w.forgot <- tags }, func() { w.live <- struct{}{} })
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	select {
	case <-w.live:
	case <-time.After(patience):
		tb.Fatalf("WatchTags not live within %v", patience)
	}
	return w
}

func (w *watched) next(tb testing.TB) []string {
	tb.Helper()
	select {
	case tags := <-w.forgot:
		return tags
	case <-time.After(patience):
		tb.Fatalf("no tag invalidation delivered within %v", patience)
		return nil
	}
}

func versions(tb testing.TB, l *pglock.Locker, ns string, tags ...string) []uint64 {
	tb.Helper()
	vs, err := l.TagVersions(context.Background(), ns, tags)
	if err != nil {
		tb.Fatal(err)
	}
	return vs
}

// Issue 10.4: a tag's version starts at 0 and each invalidation increments
// it, by the Locker or in a committed transaction, and every watcher is
// told of the tags; a rolled-back invalidation changes nothing. Clear is
// the empty tag. Tags hold any bytes.
func TestInvalidateTags(t *testing.T) {
	ctx := context.Background()
	ns := outboxNS(t)
	db := newPool(t, 4, pgx.QueryExecModeCacheStatement)
	l, other := newSessionLocker(t), newSessionLocker(t)
	w := watch(t, other, ns)
	odd := "\x00\xff ' \\ \"{,}\""

	if got := versions(t, l, ns, "a", odd, ""); !slices.Equal(got, []uint64{0, 0, 0}) {
		t.Fatalf("versions before any invalidation = %v, want zeros", got)
	}
	vs, err := l.InvalidateTags(ctx, ns, []string{"a", odd, "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vs, []uint64{1, 1, 1}) {
		t.Errorf("InvalidateTags returned %v, want [1 1 1] (a repeated tag counts once)", vs)
	}
	if got := w.next(t); !slices.Equal(got, []string{"a", odd}) {
		t.Errorf("watcher told of %q, want [a, %q]", got, odd)
	}
	inTx(t, db, false, func(tx pgx.Tx) error { return pglock.InvalidateTags(ctx, tx, ns, "a", "b") })
	if got := w.next(t); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("watcher told of %q, want [a b]", got)
	}
	inTx(t, db, true, func(tx pgx.Tx) error { return pglock.InvalidateTags(ctx, tx, ns, "a") })
	inTx(t, db, false, func(tx pgx.Tx) error { return pglock.Clear(ctx, tx, ns) })
	if got := w.next(t); !slices.Equal(got, []string{""}) {
		t.Errorf("watcher told of %q after Clear, want the empty tag", got)
	}
	if got := versions(t, l, ns, "a", "b", odd, "", "never"); !slices.Equal(got, []uint64{2, 1, 1, 1, 0}) {
		t.Errorf("versions = %v, want [2 1 1 1 0] (the rollback changed nothing)", got)
	}
	if got := versions(t, l, outboxNS(t)+"x", "a"); !slices.Equal(got, []uint64{0}) {
		t.Errorf("another namespace's version of a = %v, want 0", got)
	}
}

// Bad input is refused before anything is sent.
func TestInvalidateTagsRefuses(t *testing.T) {
	ctx := context.Background()
	db := newPool(t, 2, pgx.QueryExecModeCacheStatement)
	l := newSessionLocker(t)
	for name, call := range map[string]func() error{
		"bad namespace": func() error { return pglock.InvalidateTags(ctx, db, "a:b", "t") },
		"empty tag":     func() error { return pglock.InvalidateTags(ctx, db, outboxNS(t), "t", "") },
		"long tag":      func() error { return pglock.InvalidateTags(ctx, db, outboxNS(t), strings.Repeat("x", 257)) },
		"clear namespace": func() error {
			return pglock.Clear(ctx, db, "")
		},
		"locker namespace": func() error { _, err := l.InvalidateTags(ctx, "a b", []string{"t"}); return err },
	} {
		if err := call(); !errors.Is(err, pglock.ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
	}
	if err := pglock.InvalidateTags(ctx, db, outboxNS(t)); err != nil {
		t.Errorf("no tags: %v, want a no-op", err)
	}
}

// So many tags that their names do not fit in one notification: the
// watchers are told to forget every tag of the namespace.
func TestInvalidateTagsTooManyForOneMessage(t *testing.T) {
	ns := outboxNS(t)
	w := watch(t, newSessionLocker(t), ns)
	tags := make([]string, 1000)
	for i := range tags {
		tags[i] = strings.Repeat("x", 10) + string(rune('a'+i%26)) + strings.Repeat("y", i%7) + string(rune('0'+i/26%10)) + string(rune('A'+i/260))
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	if _, err := newSessionLocker(t).InvalidateTags(context.Background(), ns, tags); err != nil {
		t.Fatal(err)
	}
	if got := w.next(t); got != nil {
		t.Errorf("watcher told of %d tags, want nil (every tag)", len(got))
	}
}

// The application's transaction can go through PgBouncer in transaction
// pooling; the watcher's Locker is on PostgreSQL directly.
func TestInvalidateTagsPgBouncer(t *testing.T) {
	ctx := context.Background()
	pooled, l := pgBouncerFixture(t)
	ns := outboxNS(t)
	w := watch(t, l, ns)
	if err := pglock.CreateOutbox(ctx, pooled); err != nil {
		t.Fatalf("CreateOutbox through PgBouncer: %v", err)
	}
	for i := range 3 {
		inTx(t, pooled, false, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select $1::int", i); err != nil {
				return err
			}
			return pglock.InvalidateTags(ctx, tx, ns, "t")
		})
		if got := w.next(t); !slices.Equal(got, []string{"t"}) {
			t.Errorf("watcher told of %q, want [t]", got)
		}
	}
	if got := versions(t, l, ns, "t"); !slices.Equal(got, []uint64{3}) {
		t.Errorf("version after 3 commits = %v, want 3", got)
	}
}
