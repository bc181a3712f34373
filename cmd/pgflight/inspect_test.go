package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/redisstore"
)

// reportField returns the value of the report line named name, "" if none.
func reportField(out, name string) string {
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(line, name+"  "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// inspect writes entries with Groups on the test Redis and shows each as
// stored, or its value alone, with the exit status the help promises.
func TestInspectCommand(t *testing.T) {
	redisURL := testserver.RedisURL(t)
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	ns := "cmd-inspect-" + time.Now().Format("150405.000000")
	group := func(cfg pgflight.Config) *pgflight.Group {
		if cfg.Cache == nil {
			cfg.Cache = redisstore.New(rdb)
		}
		cfg.Namespace = ns
		g, err := pgflight.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}
	type point struct{ X, Y int }
	if _, err := pgflight.Fetch(ctx, group(pgflight.Config{TTL: time.Hour}), "point", func(context.Context) (point, error) { return point{1, 2}, nil }); err != nil {
		t.Fatal(err)
	}
	stale := group(pgflight.Config{TTL: time.Hour, StaleTTL: 24 * time.Hour})
	if _, err := pgflight.Fetch(ctx, stale, "report", func(context.Context) (string, error) { return "line 1\nline 2", nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := pgflight.Fetch(ctx, stale, "user:7", func(context.Context) (string, error) {
		return "", fmt.Errorf("user 7 not found: %w", pgflight.ErrMissing)
	}); err == nil {
		t.Fatal("Fetch: no error, want ErrMissing")
	}
	prefixed := group(pgflight.Config{Cache: redisstore.New(rdb, redisstore.WithPrefix("app/"))})
	if _, err := pgflight.Fetch(ctx, prefixed, "blob", func(context.Context) ([]byte, error) { return []byte{0, 1, 2, 0xff}, nil }); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, ns+":forged", "\x00forged\x01", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		args   []string // after inspect -redis-url URL -namespace NS
		status int      // exit status
		want   map[string]string
		stdout string // with -value: all of stdout
	}{
		{"fresh", []string{"point"}, 0, map[string]string{
			"cache key":    ns + ":point",
			"found":        "yes",
			"kind":         "value",
			"fresh until":  `\(fresh, 59m\d+\.\d+s left\)$`,
			"stale until":  `^- \(no stale window: the store drops it in 59m`,
			"compute time": `^\d`,
			"size":         "^13 bytes of value, 40 bytes stored$",
			"value":        regexp.QuoteMeta(`"{\"X\":1,\"Y\":2}"`),
		}, ""},
		{"stale window", []string{"report"}, 0, map[string]string{
			"stale until": `^\d{4}-\d\d-\d\d .* UTC \(the store's expiry, in 24h59m`,
			"value":       regexp.QuoteMeta(`"line 1\nline 2"`),
		}, ""},
		{"negative", []string{"user:7"}, 0, map[string]string{
			"kind":  "^negative entry",
			"value": regexp.QuoteMeta(`fn's message "user 7 not found: missing"`),
		}, ""},
		{"prefix and binary", []string{"-redis-prefix", "app/", "blob"}, 0, map[string]string{
			"cache key": ns + ":blob",
			"value":     regexp.QuoteMeta("00000000  00 01 02 ff") + `\s+\|\.\.\.\.\|$`,
		}, ""},
		{"value alone", []string{"point", "-value"}, 0, nil, `{"X":1,"Y":2}`},
		{"value alone, binary", []string{"-value", "-redis-prefix", "app/", "blob"}, 0, nil, "\x00\x01\x02\xff"},
		{"absent", []string{"nothing"}, 1, map[string]string{"cache key": ns + ":nothing", "found": "^no$"}, ""},
		{"absent, value alone", []string{"-value", "nothing"}, 1, nil, ""},
		{"without the prefix", []string{"blob"}, 1, map[string]string{"found": "^no$"}, ""},
		{"forged", []string{"forged"}, 2, map[string]string{
			"found":        "^yes, but undecodable: not a pgflight entry$",
			"size":         "^8 bytes stored$",
			"stored bytes": regexp.QuoteMeta("00000000  00 66 6f 72 67 65 64 01") + `\s+\|\.forged\.\|$`,
		}, ""},
		{"bad namespace", []string{"-namespace", "a:b", "k"}, 2, nil, ""},
		{"empty key", []string{""}, 2, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"inspect", "-redis-url", redisURL}, tc.args...)
			if !strings.Contains(tc.name, "namespace") {
				args = append([]string{"inspect", "-redis-url", redisURL, "-namespace", ns}, tc.args...)
			}
			out, errOut, err := runCmd(t, args...)
			t.Logf("stdout:\n%s\nstderr:\n%s\nerr: %v", out, errOut, err)
			if status := exitStatusOf(err); status != tc.status {
				t.Errorf("exit status %d, want %d", status, tc.status)
			}
			for name, re := range tc.want {
				if got := reportField(out, name); !regexp.MustCompile(re).MatchString(got) {
					t.Errorf("%s = %q, want it to match %s", name, got, re)
				}
			}
			if tc.want == nil && out != tc.stdout {
				t.Errorf("stdout = %q, want %q", out, tc.stdout)
			}
		})
	}

	_, _, err = runCmd(t, "inspect", "-redis-url", closedURL(t, "redis", "/0"), "k")
	if exitStatusOf(err) != 2 || !strings.Contains(fmt.Sprint(err), "connection refused") {
		t.Errorf("dead Redis: err = %v (status %d), want connection refused, status 2", err, exitStatusOf(err))
	}
}

// exitStatusOf returns the exit status main gives for err.
func exitStatusOf(err error) int {
	if err == nil {
		return 0
	}
	return exitStatus(err)
}

// The report says what it knows of an entry in each state, and shows
// values safely.
func TestDescribe(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	base := pgflight.EntryInfo{Key: "ns:k", Found: true, ComputedAt: at, FreshUntil: at.Add(time.Minute),
		ComputeTime: 250 * time.Millisecond, Size: 27 + 2, Value: []byte("42")}
	for _, tc := range []struct {
		name string
		info pgflight.EntryInfo
		now  time.Time
		pttl time.Duration
		want map[string]string
	}{
		{"fresh", base, at.Add(10 * time.Second), 50 * time.Second, map[string]string{
			"computed at":  "2026-12-01 12:00:00.000 UTC (10s ago)",
			"fresh until":  "2026-12-01 12:01:00.000 UTC (fresh, 50s left)",
			"stale until":  "- (no stale window: the store drops it in 50s)",
			"compute time": "250ms",
			"size":         "2 bytes of value, 29 bytes stored",
			"value":        `"42"`,
		}},
		{"stale", base, at.Add(2 * time.Minute), time.Hour, map[string]string{
			"fresh until": "2026-12-01 12:01:00.000 UTC (expired 1m0s ago)",
			"stale until": "2026-12-01 13:02:00.000 UTC (the store's expiry, in 1h0m0s)",
		}},
		{"no expiry", base, at, -1, map[string]string{"stale until": "- (the store keeps it with no expiry)"}},
		{"nil", pgflight.EntryInfo{Nil: true, Value: []byte{}}, at, time.Second, map[string]string{"kind": "nil []byte", "value": "(empty)"}},
		{"terminal escape", pgflight.EntryInfo{Value: []byte("\x1b[2Jgone")}, at, time.Second, map[string]string{
			"value": "00000000  1b 5b 32 4a 67 6f 6e 65                           |.[2Jgone|",
		}},
		{"long text", pgflight.EntryInfo{Value: []byte(strings.Repeat("é", 150))}, at, time.Second, map[string]string{
			"value": `"` + strings.Repeat("é", 100) + `" ... (100 more bytes; -value prints it whole)`,
		}},
		{"long binary", pgflight.EntryInfo{Value: make([]byte, 100)}, at, time.Second, map[string]string{
			"value": "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writeReport(&b, describe(tc.info, tc.now, tc.pttl))
			t.Logf("report:\n%s", b.String())
			for name, want := range tc.want {
				if got := reportField(b.String(), name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if tc.name == "long binary" && !strings.Contains(b.String(), "|................| ... (36 more bytes; -value prints it whole)\n") {
				t.Errorf("long binary: no note of the 36 bytes not shown")
			}
		})
	}
}
