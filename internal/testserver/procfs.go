package testserver

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// children returns the pids of the direct children of pid, read from /proc.
func children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		k, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := procStat(k); ok && ppid == pid {
			kids = append(kids, k)
		}
	}
	return kids
}

// procStat returns the state letter and the parent of pid from
// /proc/pid/stat; ok is false if there is no such process.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err == nil
}

// waitState polls until pid is in state ('T' stopped, 'Z' dead), or is gone,
// for at most timeout, and reports whether it got there. A process that is
// gone or dead counts as having reached any state.
func waitState(pid int, state byte, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		s, _, ok := procStat(pid)
		if !ok || s == state || s == 'Z' || s == 'X' || (state == 'T' && s == 't') {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}
