package pglock

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/internal/testserver"
)

// showKeepaliveSQL reads the keepalive settings of the session. For the
// keepalives, PostgreSQL reports what it last set on the socket (or, if
// nothing, what getsockopt returns), not merely the setting's text.
const showKeepaliveSQL = "select current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'), " +
	"current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout')"

// TestKeepalive checks the settings that a lock's transaction applies to its
// session: those WithKeepalive derives, none when the connection string sets
// one or the option turns them off, and the session's own again after
// COMMIT.
func TestKeepalive(t *testing.T) {
	same := func(def [4]string) [4]string { return def }
	fixed := func(s ...string) func([4]string) [4]string {
		return func([4]string) [4]string { return [4]string(s) }
	}
	cases := []struct {
		name   string
		params map[string]string // startup parameters, as a connection string sets them
		opts   []Option
		want   func(def [4]string) [4]string
	}{
		{"default", nil, nil, fixed("7", "2", "3", "15000")},
		{"30s", nil, []Option{WithKeepalive(30 * time.Second)}, fixed("15", "5", "3", "30000")},
		{"sub-second", nil, []Option{WithKeepalive(500 * time.Millisecond)}, fixed("1", "1", "3", "500")},
		{"off", nil, []Option{WithKeepalive(-1)}, same},
		{"connection string", map[string]string{"tcp_keepalives_idle": "42"}, nil, same},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg, err := pgxpool.ParseConfig(testserver.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 1
			maps.Copy(cfg.ConnConfig.RuntimeParams, tc.params)
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			c, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			def := showKeepalive(t, c)
			c.Release()
			if v, ok := tc.params["tcp_keepalives_idle"]; ok && def[0] != v {
				t.Fatalf("tcp_keepalives_idle of a session started with %s = %q", v, def[0])
			}

			l := New(pool, append(tc.opts, WithTransactionMode())...)
			c, err = l.acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer l.release(c)
			got, err := run(ctx, c, statement(l.trySQL, rand.Int64(), trySQLEnd))
			if err != nil || !got {
				t.Fatalf("try = %v, %v; want true, nil", got, err)
			}
			if got, want := showKeepalive(t, c), tc.want(def); got != want {
				t.Errorf("settings while locked = %q, want %q", got, want)
			}
			if _, err := run(ctx, c, commitSQL); err != nil {
				t.Fatal(err)
			}
			if got := showKeepalive(t, c); got != def {
				t.Errorf("settings after commit = %q, want the session's %q", got, def)
			}
		})
	}
}

// TestKeepaliveOnSocket checks, on the server's socket itself, that the
// keepalive timer follows the setting at once: armed for at most 7 seconds
// while a lock is held (the default WithKeepalive), back to the kernel's
// default once it is released.
func TestKeepaliveOnSocket(t *testing.T) {
	ctx := context.Background()
	dsn := testserver.PostgresURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" {
		t.Skipf("the socket check reads /proc/net/tcp, which holds the server's socket only for a local server on 127.0.0.1 (have %s)", u.Host)
	}
	serverPort, _ := strconv.Atoi(u.Port())
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l := New(pool, WithTransactionMode())
	id := rand.Int64()
	unlock, err := l.Lock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(ctx) // if the test fails early; a second unlock does nothing
	var pid int32
	locks, err := l.Held(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range locks {
		if k.ID == id && k.Granted {
			pid = k.PID
		}
	}
	var clientPort int
	if err := pool.QueryRow(ctx, "select client_port from pg_stat_activity where pid = $1", pid).Scan(&clientPort); err != nil {
		t.Fatalf("client port of backend %d: %v", pid, err)
	}
	// The timer shows as the keepalive timer once the last reply is
	// acknowledged; poll until it does.
	waitTimer := func(what string, ok func(time.Duration) bool) time.Duration {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			d, armed := keepaliveTimer(t, serverPort, clientPort)
			if armed && ok(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("server socket 127.0.0.1:%d → :%d: keepalive timer %v (armed %v), want %s", serverPort, clientPort, d, armed, what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	d := waitTimer("≤ 7s while locked", func(d time.Duration) bool { return d <= 7*time.Second })
	t.Logf("keepalive timer while locked: %v", d)
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	d = waitTimer("> 7s after unlock", func(d time.Duration) bool { return d > 7*time.Second })
	t.Logf("keepalive timer after unlock: %v", d)
}

// showKeepalive returns the session's four keepalive settings.
func showKeepalive(tb testing.TB, c *pgxpool.Conn) [4]string {
	tb.Helper()
	res, err := c.Conn().PgConn().Exec(context.Background(), showKeepaliveSQL).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	var out [4]string
	for i, v := range res[0].Rows[0] {
		out[i] = string(v)
	}
	return out
}

// keepaliveTimer reads /proc/net/tcp for the socket from 127.0.0.1:local to
// 127.0.0.1:remote and returns the time left on its timer, and whether that
// timer is the keepalive timer (kind 2). The kernel reports it in clock
// ticks of 1/100 s (USER_HZ).
func keepaliveTimer(tb testing.TB, local, remote int) (time.Duration, bool) {
	tb.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X 0100007F:%04X", local, remote)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1]+" "+fields[2] != want {
			continue
		}
		kind, when, _ := strings.Cut(fields[5], ":")
		ticks, err := strconv.ParseInt(when, 16, 64)
		if err != nil {
			tb.Fatalf("/proc/net/tcp: timer %q: %v", fields[5], err)
		}
		return time.Duration(ticks) * 10 * time.Millisecond, kind == "02"
	}
	tb.Fatalf("/proc/net/tcp has no socket %s", want)
	return 0, false
}
