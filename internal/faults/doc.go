// Package faults holds pgflight's fault-injection suite, in its tests, and
// [Proxy], a loopback TCP proxy that the suite puts between a client and a
// server to stall or cut their connections.
//
// Each scenario of RELIABILITY.md (at the repository root) is a test here.
// The tests start servers of their own with internal/testserver, so that
// they can stop, kill, restart or freeze them, and re-execute the test
// binary as worker processes where a scenario needs several processes:
//
//	go test -race ./internal/faults/
//	go test -v -count=1 -run 'TestHolderKilled' ./internal/faults/ | grep measured
package faults
