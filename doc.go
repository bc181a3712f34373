// Package pgflight makes a fleet of processes compute each cached value
// once.
//
// When a popular cached value expires, every request that misses it
// recomputes it at once: a cache stampede. In-process singleflight saves
// that work only inside one process; pgflight saves it across the fleet. On
// a miss the caller takes a PostgreSQL advisory lock on a hash of the key,
// reads the cache again, and only the lock holder computes and stores;
// every other caller, in any process on any host, waits and shares the
// stored result. PostgreSQL drops a session's locks when it ends, so a
// crashed worker never leaves a stuck lock.
//
//	g, err := pgflight.New(pgflight.Config{Cache: redisstore.New(rdb), Locker: pglock.New(pool)})
//	report, err := pgflight.Fetch(ctx, g, "report:2026-q3", func(ctx context.Context) (Report, error) {
//		return buildReport(ctx, "2026-q3") // runs once across the fleet
//	})
//
// # Guarantee
//
// Among all processes sharing a [Locker], at most one computation of a key
// runs at a time, and callers that waited for it get its stored value
// without computing. Inside one process, concurrent callers of a key share
// one flight: one cache read, one lock wait, one computation.
//
// The lock is an efficiency device, not a correctness guarantee. A lock
// server can drop a lock without telling its holder (a restart, a lost
// connection), and by default Fetch computes without the lock when the
// Locker fails (see Config.FailClosed), so a value may occasionally be
// computed twice. Computations must be safe to repeat, and the last value
// stored wins.
//
// # Flow
//
// [Fetch] joins the process's flight for the key or starts one. A flight
// reads the [Cache]; on a fresh hit it returns. On a miss it asks the
// [Locker] for the lock on the key's 64-bit id. If the Locker is a
// [Follower] and another process holds the lock, the flight waits for that
// holder without queuing for the lock, then reads the value it stored. The
// lock holder reads the cache once more, calls fn, stores the value, and
// only then releases the lock, so waiters always find it.
//
// # Failures
//
// An error or panic in fn reaches every caller of the flight and nothing
// is cached; a waiter in another process then takes the lock and computes
// itself. A cache read error counts as a miss; a cache write error is
// logged and the value is still returned. An undecodable entry counts as a
// miss and is overwritten. A caller whose ctx ends returns at once; the
// computation goes on while any caller of its flight still waits.
//
// # Freshness
//
// Config.StaleTTL (or [WithStaleTTL]) lets an entry be served for a while
// after it stops being fresh: the caller gets the stale value at once and
// one background refresh replaces it. At most one refresh per key runs in
// a process, and across processes the refresh takes the lock with a try
// ([TryLocker]), so one process refreshes while the others skip.
// Config.EarlyRefresh (or [WithEarlyRefresh]) adds XFetch probabilistic
// early refresh: a fresh hit close to expiry (relative to how long the
// value took to compute) starts that same single refresh, so that popular
// values are replaced before anyone has to wait for them. XFetch picks
// when; the lock picks who. Config.TTLJitter spreads the expiry of values
// computed together.
//
// A fn that finds nothing returns an error wrapping [ErrMissing]: the
// answer is cached for Config.MissingTTL as a negative entry, and callers
// in every process get an error wrapping ErrMissing without calling fn.
// Other errors are never cached.
//
// Entries carry times from the clock of the process that wrote them. The
// store's own TTL, counted on the store's clock, bounds an entry's age;
// fresh-until only tells fresh from stale within it, so a process whose
// clock is off by minutes neither serves values past the store's TTL nor
// recomputes fresh ones on every call.
//
// # Batches
//
// [FetchMany] gets many keys with one cache round trip and computes the
// missing ones with one call of its fn, which gets only the keys that no
// other process is computing. It takes the locks of those keys without
// waiting, in one transaction with a [BatchLocker], and waits for the
// others' computations holding no lock, so overlapping batches in
// different processes never deadlock.
//
// # Invalidation
//
// [Group.Delete] is ordered after any computation of the key in flight in
// any process: it takes the key's lock before it deletes, so no value
// computed from data read before it is served afterwards. [Set] and
// [Expire] go the same way. pglock's Invalidate records an invalidation in
// the application's own transaction: it takes effect at COMMIT, and never
// on ROLLBACK.
//
// A local tier (Config.Local) keeps fresh copies in process, so a hit
// costs no round trip; every stored value and every Delete is broadcast
// through the Locker (a [Broadcaster]: pglock's lock session), and every
// process drops its copy. A gap in the broadcasts drops the whole tier.
//
// [WithTags] tags the entries a call stores; [Group.InvalidateTags] makes
// every entry stored with a tag before it a miss in every process, and
// [Group.Clear] every entry of the namespace, without deleting anything or
// keeping an index of keys per tag: entries record their tags' versions,
// which the Locker (a [TagSource]: pglock) keeps in PostgreSQL and every
// process holds in memory. pglock's InvalidateTags and Clear do the same in
// the application's transaction.
//
// # Everyday calls
//
// [Set] stores a known value, [Get] reads without computing, [Expire]
// marks a value stale so that it is served while one process refreshes it,
// and fn may choose its value's TTL with [SetTTL]. Config.FailSafe serves
// the last value when fn fails. An [Observer] (Config.Observer) sees every
// hit, flight, lock wait, computation, store, refresh and invalidation.
//
// # Backends
//
// The package imports only the standard library. Backends live in their
// own packages: pglock (PostgreSQL advisory locks, on pgx v5), redisstore
// (Redis single node, Sentinel and Cluster, on go-redis v9),
// memcachedstore (memcached), pgstore (a PostgreSQL table) and memstore
// (in-process). Metrics and traces: the modules extra/pgflightprom and
// extra/pgflightotel. With a zero Config a Group uses an in-process cache
// and locker, which coordinate one process only.
package pgflight
