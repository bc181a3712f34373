package pgflight

import (
	"fmt"
	"time"
)

// SetLockIDFunc replaces g's key → lock id function, so tests can force two
// keys onto one lock.
func SetLockIDFunc(g *Group, f func(namespace, key string) int64) { g.lockID = f }

// SetClock replaces g's clock, so tests can skew it.
func SetClock(g *Group, now func() time.Time) { g.now = now }

// SetRand replaces g's source of U, uniform in (0, 1], for XFetch and
// jitter.
func SetRand(g *Group, u func() float64) { g.rand = u }

// SetCooldowns records n cooldowns that never expire, as n refreshed keys
// would, and returns how many sweeps of the cooldown map they caused.
func SetCooldowns(g *Group, n int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	before := g.cooldownSweeps
	until := time.Now().Add(time.Hour)
	for i := range n {
		g.setCooldown(fmt.Sprint("k", i), until)
	}
	return g.cooldownSweeps - before
}

// The embedded defaults' capabilities, checked at compile time.
var (
	_ Cache     = (*localCache)(nil)
	_ Deleter   = (*localCache)(nil)
	_ TryLocker = (*localLocker)(nil)
)
