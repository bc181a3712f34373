package pgflight

// SetLockIDFunc replaces g's key → lock id function, so tests can force two
// keys onto one lock.
func SetLockIDFunc(g *Group, f func(namespace, key string) int64) { g.lockID = f }
