package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds how long a start waits for a server to answer.
	readyTimeout = 30 * time.Second
	// stopTimeout bounds how long a stop waits for a server to exit
	// before it is killed.
	stopTimeout = 30 * time.Second
	// pollInterval is the pause between two checks of a polling loop.
	pollInterval = 10 * time.Millisecond
)

// process is one server process. It runs in a process group of its own, is
// signalled together with its direct children (PostgreSQL backends call
// setsid, so the group alone does not reach them) and is reaped by polling,
// so that no goroutine outlives a method call: goleak in the packages that
// use the shared servers must not see one.
//
// The kernel kills the process when the thread that started it dies
// (Pdeathsig), so a test binary that crashes or times out leaves no server
// behind; its temporary directory stays.
//
// A process is not safe for concurrent use; its owner serialises calls.
type process struct {
	name string              // for errors: "postgres", "redis-server"
	path string              // the binary
	dir  string              // working directory
	log  string              // file that receives stdout and stderr
	cred *syscall.Credential // nil: run as the current user

	pid    int // 0 when not running
	handle *os.Process
	paused bool
}

// startError is a failed start together with the server's own account of it.
type startError struct {
	err error
	log string // the tail of the log written during this start
}

func (e *startError) Error() string {
	if e.log == "" {
		return e.err.Error()
	}
	return e.err.Error() + "\n--- log tail ---\n" + e.log
}

func (e *startError) Unwrap() error { return e.err }

// start runs the binary with args and returns when ready reports success.
// If the process exits first, or ready keeps failing for readyTimeout, start
// kills it and returns a *startError that carries the tail of the log.
func (p *process) start(args []string, ready func(context.Context) error) error {
	if p.pid != 0 {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.pid)
	}
	f, err := os.OpenFile(p.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var offset int64
	if fi, err := f.Stat(); err == nil {
		offset = fi.Size()
	}
	cmd := exec.Command(p.path, args...)
	cmd.Dir = p.dir
	cmd.Stdout = f // an *os.File, so exec starts no copying goroutine
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: p.cred,
		Pdeathsig:  syscall.SIGKILL,
	}
	err = cmd.Start()
	f.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.pid, p.handle = cmd.Process.Pid, cmd.Process

	deadline := time.Now().Add(readyTimeout)
	for {
		if exited, status := p.reap(); exited {
			return &startError{fmt.Errorf("%s exited during start: %s", p.name, status), tail(p.log, offset)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return &startError{fmt.Errorf("%s not ready after %v: %w", p.name, readyTimeout, err), tail(p.log, offset)}
		}
		time.Sleep(pollInterval)
	}
}

// stop sends sig and waits for the process to exit. A paused process is
// resumed first so that it can act on sig. If it has not exited within
// timeout, stop kills it and reports that.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	return p.stopWith(func() error {
		if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal %s: %w", p.name, err)
		}
		return nil
	}, timeout)
}

// stopWith is stop with the shutdown requested by ask rather than a signal.
func (p *process) stopWith(ask func() error, timeout time.Duration) error {
	if p.pid == 0 {
		return nil
	}
	if p.paused {
		p.resume()
	}
	if err := ask(); err != nil {
		return err
	}
	if p.waitExit(timeout) {
		return nil
	}
	p.kill()
	return fmt.Errorf("%s did not exit within %v of being asked to; killed it", p.name, timeout)
}

// waitExit polls until the process has exited and been reaped, for at most
// timeout, and reports whether it has.
func (p *process) waitExit(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if exited, _ := p.reap(); exited {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// kill sends SIGKILL to the process, its group and its children, and waits
// until all of them are gone. The process is stopped first, so that it
// neither forks nor reacts while its children are collected.
func (p *process) kill() error {
	if p.pid == 0 {
		return nil
	}
	syscall.Kill(p.pid, syscall.SIGSTOP)
	waitState(p.pid, 'T', time.Second)
	kids := children(p.pid)
	for _, k := range kids {
		syscall.Kill(-k, syscall.SIGKILL) // a backend leads a group of its own
		syscall.Kill(k, syscall.SIGKILL)
	}
	syscall.Kill(-p.pid, syscall.SIGKILL)
	if !p.waitExit(10 * time.Second) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, p.pid)
	}
	for _, k := range kids {
		if !waitState(k, 'Z', 10*time.Second) {
			return fmt.Errorf("%s child (pid %d) survived SIGKILL", p.name, k)
		}
	}
	return nil
}

// pause stops the process and its children with SIGSTOP and returns once
// every one of them is stopped.
func (p *process) pause() error {
	if p.pid == 0 {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := syscall.Kill(-p.pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	p.paused = true
	if !waitState(p.pid, 'T', 10*time.Second) {
		return fmt.Errorf("%s (pid %d) did not stop", p.name, p.pid)
	}
	kids := children(p.pid) // complete: the parent can no longer fork
	for _, k := range kids {
		syscall.Kill(k, syscall.SIGSTOP)
	}
	for _, k := range kids {
		if !waitState(k, 'T', 10*time.Second) {
			return fmt.Errorf("%s child (pid %d) did not stop", p.name, k)
		}
	}
	return nil
}

// resume continues the process and its children with SIGCONT.
func (p *process) resume() error {
	if p.pid == 0 {
		return fmt.Errorf("%s is not running", p.name)
	}
	for _, k := range children(p.pid) {
		syscall.Kill(k, syscall.SIGCONT)
	}
	p.paused = false
	if err := syscall.Kill(-p.pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// reap collects the process if it has exited, without blocking.
func (p *process) reap() (exited bool, status string) {
	if p.pid == 0 {
		return true, "gone"
	}
	var ws syscall.WaitStatus
	for {
		pid, err := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err == nil && pid == 0 {
			return false, ""
		}
		status = "gone"
		if err == nil {
			status = waitStatus(ws)
		}
		p.handle.Release()
		p.pid, p.handle, p.paused = 0, nil, false
		return true, status
	}
}

func waitStatus(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// tail returns the last lines of the file at path written after offset.
func tail(path string, offset int64) string {
	const maxBytes = 4 << 10
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if fi.Size()-offset > maxBytes {
		offset = fi.Size() - maxBytes
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, fi.Size()-offset))
	s := strings.TrimSpace(string(b))
	if lines := strings.Split(s, "\n"); len(lines) > 25 {
		s = strings.Join(lines[len(lines)-25:], "\n")
	}
	return s
}
