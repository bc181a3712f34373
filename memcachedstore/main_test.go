package memcachedstore_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/pgflight/pgflight/internal/testserver"
)

// addrEnv names a running memcached for the tests, HOST:PORT, instead of
// the one TestMain starts. storetest stores values of 1 MiB, which need an
// item size limit above it: start that server with -I 2m.
const addrEnv = "PGFLIGHT_TEST_MEMCACHED_ADDR"

// testItemSize is the item size limit (-I) of the server TestMain starts.
const testItemSize = 2 << 20

// server is the memcached that the tests share: the one addrEnv names, or
// else the one TestMain started, or why it could not.
var server struct {
	addr string
	err  error
}

// TestMain starts memcached with -I 2m for the tests, unless
// PGFLIGHT_TEST_MEMCACHED_ADDR names one, and stops it after them.
func TestMain(m *testing.M) {
	var srv *testserver.Memcached
	if addr := os.Getenv(addrEnv); addr != "" {
		server.addr = addr
	} else {
		srv, server.err = testserver.StartMemcachedWith(testserver.MemcachedOptions{MaxItemSize: testItemSize})
		if server.err == nil {
			server.addr = srv.Addr()
		}
	}
	code := m.Run()
	if srv != nil {
		if err := srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// serverAddr returns the address of the shared server, or fails tb with
// the reason it could not be started, which names the Debian package to
// install if memcached is missing.
func serverAddr(tb testing.TB) string {
	tb.Helper()
	if server.err != nil {
		tb.Fatalf("%v\n(install memcached with: apt-get install -y memcached, or set %s to the address of a running one started with -I 2m)", server.err, addrEnv)
	}
	return server.addr
}

// newClient returns a client of the shared server, closed when tb ends.
func newClient(tb testing.TB) *memcache.Client {
	tb.Helper()
	mc := memcache.New(serverAddr(tb))
	mc.MaxIdleConns = 32
	tb.Cleanup(func() { mc.Close() })
	return mc
}

// raw sends one text-protocol command to the server at addr and returns
// its reply, without the final CRLF: one line, or for stats, every line
// up to END joined by newlines.
func raw(tb testing.TB, addr, cmd string) string {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
		tb.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			tb.Fatalf("%q: %v", cmd, err)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if !strings.HasPrefix(line, "STAT ") {
			if line != "END" || len(lines) == 0 {
				lines = append(lines, line)
			}
			return strings.Join(lines, "\n")
		}
		lines = append(lines, line)
	}
}

// itemSizeMax returns the server's item size limit, its -I.
func itemSizeMax(tb testing.TB, addr string) int {
	tb.Helper()
	for line := range strings.SplitSeq(raw(tb, addr, "stats settings"), "\n") {
		if v, ok := strings.CutPrefix(line, "STAT item_size_max "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				tb.Fatalf("stats settings: %q: %v", line, err)
			}
			return n
		}
	}
	tb.Fatal("stats settings has no item_size_max")
	return 0
}

// remainingTTL returns the seconds the server gives the item under the
// memcached key k before it expires (meta get with the t flag: -1 for
// none), and whether there is such an item.
func remainingTTL(tb testing.TB, addr, k string) (int, bool) {
	tb.Helper()
	reply := raw(tb, addr, "mg "+k+" t")
	if reply == "EN" {
		return 0, false
	}
	v, ok := strings.CutPrefix(reply, "HD t")
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		tb.Fatalf("mg %s t = %q, want HD tSECONDS or EN", k, reply)
	}
	return n, true
}
