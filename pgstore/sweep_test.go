package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pgstore"
)

// setExpired stores n entries under prefix and makes them expired, and m
// live ones under "live".
func setExpired(t *testing.T, s *pgstore.Store, pool *pgxpool.Pool, table, prefix string, n, m int) {
	t.Helper()
	var keys []string
	var vals [][]byte
	var ttls []time.Duration
	for i := range n {
		keys, vals, ttls = append(keys, fmt.Sprintf("%s%03d", prefix, i)), append(vals, []byte("x")), append(ttls, time.Hour)
	}
	for i := range m {
		keys, vals, ttls = append(keys, fmt.Sprintf("live%03d", i)), append(vals, []byte("x")), append(ttls, time.Hour)
	}
	if err := s.SetMany(t.Context(), keys, vals, ttls); err != nil {
		t.Fatal(err)
	}
	expire(t, pool, table, prefix)
}

// TestSweep checks that one Sweep deletes at most the limit, only expired
// rows, and that repeated sweeps delete them all.
func TestSweep(t *testing.T) {
	pool := newPool(t, 4)
	s, table := newStore(t, pool, pgstore.WithSweepLimit(10))
	ctx := t.Context()
	if _, err := s.Sweep(ctx); err == nil {
		t.Error("Sweep on a missing table succeeded; want an error, and no table created")
	}
	setExpired(t, s, pool, table, "old", 25, 5)
	for i, want := range []int64{10, 10, 5, 0} {
		n, err := s.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("sweep %d deleted %d rows, want %d", i, n, want)
		}
		if rows, want := count(t, pool, table), 30-min(int64(25), int64(10*(i+1))); rows != want {
			t.Errorf("after sweep %d: %d rows, want %d", i, rows, want)
		}
	}
	for i := range 5 {
		if _, ok, err := s.Get(ctx, fmt.Sprintf("live%03d", i)); !ok || err != nil {
			t.Errorf("Get(live%03d) after the sweeps = %v, %v; want a hit", i, ok, err)
		}
	}
}

// TestJanitor checks that the janitor deletes expired rows by itself (in
// batches of 3, so several per tick) and that Close stops it, leaving no
// goroutine behind.
func TestJanitor(t *testing.T) {
	admin := newPool(t, 2) // counts and drops; started before goleak's snapshot
	table := freshTable(t, admin)
	leaks := goleak.IgnoreCurrent()
	pool := poolOf(t, testserver.PostgresURL(t), 4)
	s, err := pgstore.New(pool, pgstore.WithTable(table), pgstore.WithSweepInterval(10*time.Millisecond), pgstore.WithSweepLimit(3))
	if err != nil {
		t.Fatal(err)
	}
	setExpired(t, s, admin, table, "old", 10, 2)
	deadline := time.Now().Add(30 * time.Second)
	for count(t, admin, table) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows after 30 s, want the 2 live ones", count(t, admin, table))
		}
		time.Sleep(5 * time.Millisecond) // polling the observable state
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The Store still serves after Close.
	if _, ok, err := s.Get(t.Context(), "live000"); !ok || err != nil {
		t.Errorf("Get after Close = %v, %v; want a hit", ok, err)
	}
	pool.Close() // its background goroutines would count as leaks
	goleak.VerifyNone(t, leaks)
}
