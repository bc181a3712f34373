package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

// frameHeader matches the first line of a frame of locks -watch.
var frameHeader = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+  pgflight locks -watch, every \S+$`)

// holdLock takes the lock of key in namespace "cmd-test" through pglock on
// the test database, in a session named app, and returns its id; it is
// released at cleanup.
func holdLock(t *testing.T, key, app string) int64 {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testserver.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	id := pgflight.LockID("cmd-test", key)
	unlock, err := pglock.New(pool).Lock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unlock(ctx) })
	return id
}

// hasLockRow reports whether frame lists lock id held by a session whose
// application_name starts with app (pglock adds its own name after a space).
func hasLockRow(frame string, id int64, app string) bool {
	for line := range strings.Lines(frame) {
		f := strings.Fields(line)
		if len(f) >= 8 && f[1] == strconv.FormatInt(id, 10) && f[4] == "true" && f[7] == app {
			return true
		}
	}
	return false
}

// locks -watch -count N, not on a terminal, writes N frames one after the
// other, each under a timestamp, each listing the lock the test holds.
func TestLocksWatch(t *testing.T) {
	const app = "pgflight-test-watch"
	id := holdLock(t, t.Name(), app)
	out, errOut, err := runCmd(t, "locks", "-watch", "-interval", "10ms", "-count", "3", "-database-url", testserver.PostgresURL(t))
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if err != nil {
		t.Fatalf("locks -watch: %v", err)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("output holds escape sequences, though it is not a terminal")
	}
	frames := strings.Split(out, "\n\n")
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3 separated by blank lines", len(frames))
	}
	for i, f := range frames {
		if !frameHeader.MatchString(strings.SplitN(f, "\n", 2)[0]) {
			t.Errorf("frame %d starts %q, want a timestamp header", i+1, strings.SplitN(f, "\n", 2)[0])
		}
		if !strings.Contains(f, "\nadvisory locks in ") || !hasLockRow(f, id, app) {
			t.Errorf("frame %d does not list lock %d held by %s", i+1, id, app)
		}
	}
}

// A watch outlives its PostgreSQL: while the server is away each frame
// shows the error (with the password masked), when it is back the frames
// list the locks again, and an interrupt ends the watch with no error.
func TestLocksWatchServerAway(t *testing.T) {
	const app, pw = "pgflight-test-watch-away", "WatchPW-Zq8"
	id := holdLock(t, t.Name(), app)
	p, u := startProxy(t, testserver.PostgresURL(t))
	u.User = url.UserPassword(u.User.Username(), pw) // the server does not ask for it

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newWatchedBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"locks", "-watch", "-interval", "10ms", "-database-url", u.String()}, out, io.Discard)
	}()
	lastFrame := func(s string) string { return s[strings.LastIndex(s, "\n\n")+1:] }
	out.waitFor(t, "a frame listing the lock", func(s string) bool { return hasLockRow(lastFrame(s), id, app) })
	p.down()
	away := out.waitFor(t, "two frames with an error", func(s string) bool { return strings.Count(s, "\nerror: locks: ") >= 2 })
	p.up(t)
	out.waitFor(t, "a frame listing the lock again", func(s string) bool {
		return len(s) > len(away) && hasLockRow(lastFrame(s), id, app)
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted watch: err = %v, want nil", err)
	}
	all := out.String()
	t.Logf("stdout:\n%s", all)
	if strings.Contains(all, pw) {
		t.Errorf("output shows the password")
	}
	errLine := regexp.MustCompile(`(?m)^error: locks: postgres://[^:@]*:xxxxx@` + regexp.QuoteMeta(p.addr) + `/\S*: .+$`)
	if !errLine.MatchString(all) {
		t.Errorf("no error line naming the server with the password masked")
	}
}

// A watchedBuffer is a buffer that the test can wait on while another
// goroutine writes to it.
type watchedBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	written chan struct{} // holds a token after each write
}

func newWatchedBuffer() *watchedBuffer {
	return &watchedBuffer{written: make(chan struct{}, 1)}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	w.mu.Unlock()
	select {
	case w.written <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitFor waits until what has been written satisfies cond, and returns it.
func (w *watchedBuffer) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		if s := w.String(); cond(s) {
			return s
		}
		select {
		case <-w.written:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; output:\n%s", what, w.String())
		}
	}
}

// A tcpProxy forwards the connections it accepts on a loopback port to a
// server. It can go down, refusing and dropping connections as a server
// that went away does, and come back on the same port.
type tcpProxy struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
	wg           sync.WaitGroup
}

// startProxy starts a tcpProxy to the server of the URL serverURL, stopped
// at cleanup, and returns it with serverURL changed to go through it.
func startProxy(t *testing.T, serverURL string) (*tcpProxy, *url.URL) {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: u.Host, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.up(t)
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	u.Host = p.addr
	return p, u
}

// up listens again, on the port of the first time.
func (p *tcpProxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.forward(c)
		}
	}()
}

// forward connects c to the target, both ways.
func (p *tcpProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	p.wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go pipe(s, c)
	go pipe(c, s)
}

// down stops listening and drops every connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		panic(err)
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
