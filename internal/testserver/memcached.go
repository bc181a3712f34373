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

// StartMemcached starts memcached from PATH on a free port of 127.0.0.1
// (memcached -l 127.0.0.1 -p PORT -U 0) and returns once it answers. The
// caller must Close it.
func StartMemcached() (*Memcached, error) {
	d, err := startDaemon("memcached", "memcached", memcachedArgs, memcachedReady)
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
