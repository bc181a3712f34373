package pgflight_test

import (
	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
	"github.com/pgflight/pgflight/pglock"
	"github.com/pgflight/pgflight/redisstore"
)

// Every backend's capabilities, checked at compile time: losing one would
// silently downgrade Fetch (no batch reads, no wake-together, no try for
// refreshes), and no test would fail.
var (
	_ pgflight.Cache      = (*memstore.Store)(nil)
	_ pgflight.Deleter    = (*memstore.Store)(nil)
	_ pgflight.Cache      = (*redisstore.Store)(nil)
	_ pgflight.Deleter    = (*redisstore.Store)(nil)
	_ pgflight.BatchCache = (*redisstore.Store)(nil)

	_ pgflight.Locker      = (*pglock.Locker)(nil)
	_ pgflight.Follower    = (*pglock.Locker)(nil)
	_ pgflight.TryLocker   = (*pglock.Locker)(nil)
	_ pgflight.BatchLocker = (*pglock.Locker)(nil)
)
