package testserver

import (
	"context"
	"os"
	"strconv"
)

// Memcached is a memcached of its own, started by [StartMemcached]: TCP
// only, on a free port of 127.0.0.1. Its lifecycle methods (Stop, Start,
// Kill, Pause, Resume, Close) are safe for concurrent use by multiple
// goroutines; each waits until the server has reached the state it names.
type Memcached struct{ *daemon }

// MemcachedOptions configures [StartMemcachedWith].
type MemcachedOptions struct {
	// MaxItemSize is the largest item the server stores, in bytes: its -I
	// option. An item is its key, its value and a header of some 50 bytes.
	//
	// Default: memcached's own, 1 MiB.
	MaxItemSize int
}

// StartMemcached starts memcached from PATH on a free port of 127.0.0.1
// (memcached -l 127.0.0.1 -p PORT -U 0) and returns once it answers. The
// caller must Close it.
func StartMemcached() (*Memcached, error) {
	return StartMemcachedWith(MemcachedOptions{})
}

// StartMemcachedWith is [StartMemcached] with options, which add to the
// command line: -I BYTES for a MaxItemSize.
func StartMemcachedWith(opts MemcachedOptions) (*Memcached, error) {
	args := func(port int, dir string) []string {
		a := memcachedArgs(port, dir)
		if opts.MaxItemSize > 0 {
			a = append(a, "-I", strconv.Itoa(opts.MaxItemSize))
		}
		return a
	}
	d, err := startDaemon("memcached", "memcached", args, memcachedReady)
	if err != nil {
		return nil, err
	}
	return &Memcached{d}, nil
}

// memcachedArgs returns the memcached command line. memcached refuses root
// unless told which user to run as, so root names itself.
func memcachedArgs(port int, _ string) []string {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	return args
}

// memcachedReady reports whether the server answers the version command.
func memcachedReady(ctx context.Context, addr string) error {
	return pingText(ctx, addr, "version\r\n", "VERSION ")
}
