package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// withFreePort calls start with a free port, and again with another one if
// a different process took the port in between.
func withFreePort(start func(port int) error) error {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		err = start(port)
		var se *startError
		if err == nil || attempt == 3 || !errors.As(err, &se) || !strings.Contains(se.log, "already in use") {
			return err
		}
	}
}

// pingText sends cmd over a new TCP connection to addr and checks that the
// reply starts with want: a readiness check for text protocols.
func pingText(ctx context.Context, addr, cmd, want string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return err
	}
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != want {
		return fmt.Errorf("reply %q, want %q", buf, want)
	}
	return nil
}
