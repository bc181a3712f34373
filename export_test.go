package pgflight

import "time"

// SetLockIDFunc replaces g's key → lock id function, so tests can force two
// keys onto one lock.
func SetLockIDFunc(g *Group, f func(namespace, key string) int64) { g.lockID = f }

// SetClock replaces g's clock, so tests can skew it.
func SetClock(g *Group, now func() time.Time) { g.now = now }

// SetRand replaces g's source of U, uniform in (0, 1], for XFetch and
// jitter.
func SetRand(g *Group, u func() float64) { g.rand = u }
