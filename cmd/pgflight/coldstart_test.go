package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pgflight/pgflight/internal/testserver"
)

// A coldRow is one mode's line of the cold start's table.
type coldRow struct {
	calls, computations, errors, failOpens int
	perKey, peakConns                      string
}

// parseColdTable returns the rows of the cold start's table by mode: the
// rows of 10 columns after the line that starts the cold start.
func parseColdTable(t *testing.T, out string) map[string]coldRow {
	t.Helper()
	_, cold, ok := strings.Cut(out, "\ncold start: each of")
	if !ok {
		t.Fatalf("no cold start in the output")
	}
	rows := make(map[string]coldRow)
	for line := range strings.Lines(cold) {
		f := strings.Fields(line)
		if len(f) != 10 || (f[0] != modeNone && f[0] != modeLocal && f[0] != modePgflight) {
			continue
		}
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("row %q: %v", line, err)
			}
			return n
		}
		rows[f[0]] = coldRow{calls: atoi(f[1]), computations: atoi(f[2]), perKey: f[3],
			peakConns: f[7], errors: atoi(f[8]), failOpens: atoi(f[9])}
	}
	return rows
}

// The demo's cold start on real servers: 3 processes x 4 goroutines, each
// process wanting each of 20 keys once, in three modes.
func TestDemoColdStart(t *testing.T) {
	const procs, keys = 3, 20
	pgURL, redisURL := testserver.PostgresURL(t), testserver.RedisURL(t)
	out, errOut, err := runCmd(t, "demo", "-procs", strconv.Itoa(procs), "-goroutines", "4", "-compute", "10ms",
		"-cold-keys", strconv.Itoa(keys), "-cold-compute", "20ms", "-database-url", pgURL, "-redis-url", redisURL)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if !strings.Contains(out, "cold start: each of the 3 processes wants each of 20 fresh keys once") {
		t.Errorf("no cold start header for 3 processes and 20 keys")
	}
	rows := parseColdTable(t, out)
	for _, mode := range []string{modeNone, modeLocal, modePgflight} {
		r, ok := rows[mode]
		if !ok {
			t.Errorf("no cold start row for mode %s", mode)
			continue
		}
		if r.calls != procs*keys {
			t.Errorf("%s: calls = %d, want %d (each process asks for each key once)", mode, r.calls, procs*keys)
		}
		if r.errors != 0 {
			t.Errorf("%s: errors = %d, want 0", mode, r.errors)
		}
		// Every key is cold, so each is computed at least once; each
		// process asks for it once, so at most once per process. (How
		// many more than once pgflight computes depends on pglock: with
		// locks past its connection cap it fails open.)
		if r.computations < keys || r.computations > procs*keys {
			t.Errorf("%s: computations = %d, want %d to %d", mode, r.computations, keys, procs*keys)
		}
		if want := strconv.FormatFloat(float64(r.computations)/keys, 'f', 2, 64); r.perKey != want {
			t.Errorf("%s: per key = %s, want %s", mode, r.perKey, want)
		}
	}
	for _, mode := range []string{modeNone, modeLocal} {
		if r := rows[mode]; r.peakConns != "0" || r.failOpens != 0 {
			t.Errorf("%s: peak PG conns %s, fail-opens %d; want 0 and 0 (no PostgreSQL)", mode, r.peakConns, r.failOpens)
		}
	}
	if n, err := strconv.Atoi(rows[modePgflight].peakConns); err != nil || n < 1 {
		t.Errorf("pgflight: peak PG conns = %s, want at least 1", rows[modePgflight].peakConns)
	}
	if !strings.Contains(out, "cold start: pgflight computed each key ") {
		t.Errorf("no cold start conclusion")
	}
}
