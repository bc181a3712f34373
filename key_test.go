package pgflight_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

// keyRecorder is a Cache that records the keys it is asked to store.
type keyRecorder struct {
	pgflight.Cache
	mu   sync.Mutex
	keys []string
}

func (r *keyRecorder) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.keys = append(r.keys, key)
	r.mu.Unlock()
	return r.Cache.Set(ctx, key, val, ttl)
}

// The cache key is part of the stored format: operators find entries by
// it, and every process of every release must use the same one.
func TestCacheKeyIsStable(t *testing.T) {
	cases := []struct{ ns, key, want string }{
		{"", "user:42", "pgflight:user:42"},
		{"reports", "report:2026-q3", "reports:report:2026-q3"},
		{"site", "user:42", "site:user:42"},
		{"a.b/c-d_e", "\x00 :", "a.b/c-d_e:\x00 :"},
	}
	for _, tc := range cases {
		rec := &keyRecorder{Cache: memstore.New()}
		g, err := pgflight.New(pgflight.Config{Namespace: tc.ns, Cache: rec}) // newGroup would name "" for the test
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if _, err := pgflight.Fetch(context.Background(), g, tc.key, func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		if len(rec.keys) != 1 || rec.keys[0] != tc.want {
			t.Errorf("namespace %q, key %q stored under %q, want [%q]", tc.ns, tc.key, rec.keys, tc.want)
		}
	}
}

// Issue 9.1: namespace "site" caches key "user:42" (say, from a URL path);
// a Group that could take namespace "site:user" would read that entry as
// its key "42". Such a namespace is refused, and a structured one reads
// only its own entries.
func TestNamespacesNeverShareEntries(t *testing.T) {
	ctx := context.Background()
	cache := memstore.New()
	site := newGroup(t, pgflight.Config{Namespace: "site", Cache: cache})
	if _, err := pgflight.Fetch(ctx, site, "user:42", func(context.Context) (string, error) { return "site's user:42", nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := pgflight.New(pgflight.Config{Namespace: "site:user", Cache: cache}); err == nil {
		t.Fatal(`New(Namespace: "site:user") succeeded, want an error: its entries would meet namespace "site"'s`)
	}
	user := newGroup(t, pgflight.Config{Namespace: "site.user", Cache: cache})
	got, err := pgflight.Fetch(ctx, user, "42", func(context.Context) (string, error) { return "site.user's 42", nil })
	if got != "site.user's 42" || err != nil {
		t.Errorf(`namespace "site.user" key "42" = %q, %v; want its own value`, got, err)
	}
}

func TestNamespaceValidation(t *testing.T) {
	bad := map[string]string{
		"colon":     "a:b",
		"space":     "a b",
		"nul":       "a\x00",
		"newline":   "a\nb",
		"del":       "a\x7f",
		"non-ascii": "caf\u00e9",
		"too long":  strings.Repeat("n", 129),
	}
	for name, ns := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := pgflight.New(pgflight.Config{Namespace: ns})
			if err == nil {
				t.Fatalf("New(Namespace: %.20q) succeeded, want an error", ns)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "pgflight: Namespace") || len(msg) > 200 {
				t.Errorf("error %q: want one short message about Namespace", msg)
			}
			for _, r := range msg {
				if r > '~' {
					t.Errorf("error %q is not ASCII", msg)
					break
				}
			}
		})
	}
	for _, ns := range []string{"a", "site.user", "tenant/7-reports_v2", strings.Repeat("n", 128), "!~"} {
		g, err := pgflight.New(pgflight.Config{Namespace: ns})
		if err != nil {
			t.Errorf("New(Namespace: %.20q) = %v, want it accepted", ns, err)
			continue
		}
		g.Close()
	}
}

// Issue 9.10: a huge key (1 MB here; the report saw 10 MB) is cut short in every error and log line.
func TestHugeKeyIsTruncatedInErrorsAndLogs(t *testing.T) {
	ctx := context.Background()
	key := strings.Repeat("k", 1<<20)
	var logs leakLog
	cache := memstore.New()
	g := newGroup(t, pgflight.Config{Namespace: "huge", Cache: cache, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	_, err := pgflight.Fetch(ctx, g, key, func(context.Context) (chan int, error) { return make(chan int), nil })
	if err == nil || len(err.Error()) > 1000 {
		t.Errorf("encode error of a 1 MB key: %d bytes, want an error under 1000", len(fmt.Sprint(err)))
	}
	// An undecodable entry under the key is logged.
	if err := cache.Set(ctx, "huge:"+key, []byte("garbage"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := pgflight.Fetch(ctx, g, key, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if n := len(logs.String()); n == 0 || n > 2000 {
		t.Errorf("logs of a 1 MB key: %d bytes, want a warning under 2000", n)
	}
}
