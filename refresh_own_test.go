package pgflight_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
)

// A background refresh that finds the key's lock held by a flight of its
// own process skips without starting the key's cooldown: here that flight
// (a forced refresh) fails, and the next stale hit refreshes at once
// rather than half a TTL later.
func TestRefreshSkipOfOwnHolderSetsNoCooldown(t *testing.T) {
	ctx := context.Background()
	g := newGroup(t, pgflight.Config{TTL: time.Minute, StaleTTL: time.Hour})
	if err := pgflight.Set(ctx, g, "k", "old"); err != nil {
		t.Fatal(err)
	}
	pgflight.SetClock(g, func() time.Time { return time.Now().Add(2 * time.Minute) }) // the entry is stale
	started, release := make(chan struct{}), make(chan struct{})
	forced := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(ctx, g, "k", func(context.Context) (string, error) {
			close(started)
			<-release
			return "", errors.New("source down")
		}, pgflight.WithForceRefresh())
		forced <- err
	}()
	<-started
	refresh := func(context.Context) (string, error) { return "new", nil }
	if v, err := pgflight.Fetch(ctx, g, "k", refresh); err != nil || v != "old" {
		t.Fatalf("stale hit = %q, %v; want old", v, err)
	}
	eventually(t, "the refresh skipped for the held lock", func() bool { return g.Stats().RefreshesSkipped >= 1 })
	close(release)
	if err := <-forced; err == nil {
		t.Fatal("the forced refresh succeeded; want its error")
	}
	eventually(t, "a later stale hit refreshed the key", func() bool {
		pgflight.Fetch(ctx, g, "k", refresh)
		v, ok, _ := pgflight.Get[string](ctx, g, "k")
		return ok && v == "new"
	})
}
