package pgflight

import (
	"context"
	"time"
)

// A Cache stores encoded values under string keys. Fetch calls it to read
// and write the entries it shares between processes.
//
// Implementations must be safe for concurrent use by multiple goroutines and
// must honour ctx: a call whose ctx ends returns promptly with an error.
//
// Get reports a miss as ok == false with a nil error; a non-nil err means the
// store failed, and Fetch then treats the read as a miss and counts the error.
// The returned slice belongs to the caller.
//
// Set stores val under key for ttl (always positive), replacing any previous
// value. The store may keep val or a copy; Fetch never modifies it afterwards.
//
// Keys reach the Cache already namespaced ("namespace:key") and may hold any
// bytes and be of any length; a backend whose store limits keys (memcached:
// 250 bytes, no spaces) must map them to valid keys itself without mixing
// values of different keys.
type Cache interface {
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
}

// A Deleter is a Cache that can remove an entry. [Group.Delete] requires it.
// Deleting a missing key is not an error.
type Deleter interface {
	Delete(ctx context.Context, key string) error
}

// A Locker provides exclusive locks on 64-bit ids, shared by every process
// that should compute each value once. Fetch calls it only on a miss, and
// never holds more than one lock per key per [Group].
//
// Lock blocks until the caller holds the lock on id or ctx ends. On success
// it returns unlock, which the caller calls exactly once to release the lock;
// unlock's ctx bounds only the release itself, and whatever unlock returns,
// the lock must be released (pglock closes the connection if it cannot
// commit). On failure Lock returns a non-nil error and holds no lock.
//
// Implementations must be safe for concurrent use by multiple goroutines.
// A lock is an efficiency device, not a correctness guarantee: a lock
// server may drop a lock (restart, lost connection) without telling its
// holder, so two processes may occasionally compute the same key.
type Locker interface {
	Lock(ctx context.Context, id int64) (unlock func(context.Context) error, err error)
}

// A Follower is a Locker that can wait for another holder without queuing
// for the lock itself. Fetch uses it when the Locker implements it, so that
// every process waiting for one computation wakes at once when it ends,
// instead of taking the lock one after the other to re-check the cache.
//
// LockOrFollow takes the lock on id if no one holds it and returns unlock,
// as [Locker.Lock] does. If another holder has it, LockOrFollow waits until
// that holder releases it, then returns a nil unlock and a nil error without
// holding the lock: the caller re-checks the cache for the holder's result,
// and if the holder stored nothing, calls Lock. On failure it returns a
// non-nil error and holds no lock.
type Follower interface {
	Locker
	LockOrFollow(ctx context.Context, id int64) (unlock func(context.Context) error, err error)
}

// LockerFunc adapts an ordinary function to the [Locker] interface.
type LockerFunc func(ctx context.Context, id int64) (unlock func(context.Context) error, err error)

// Lock calls f(ctx, id).
func (f LockerFunc) Lock(ctx context.Context, id int64) (func(context.Context) error, error) {
	return f(ctx, id)
}

// A TryLocker is a Locker that can take a lock without waiting. Background
// refreshes (Config.StaleTTL, Config.EarlyRefresh) use it, so that one
// process refreshes a key while the others skip at once; with a plain
// Locker they queue for the lock instead, and skip after re-reading the
// cache.
//
// TryLock takes the lock on id if no one holds it and returns unlock, as
// [Locker.Lock] does. If another holder has it, TryLock returns a nil
// unlock and a nil error at once. On failure it returns a non-nil error and
// holds no lock.
type TryLocker interface {
	Locker
	TryLock(ctx context.Context, id int64) (unlock func(context.Context) error, err error)
}

// A BatchCache is a Cache that reads and writes many entries in one round
// trip. FetchMany uses it when the Cache implements it, and otherwise
// calls Get and Set once per key.
//
// GetMany returns one value per key, in order; a nil value is a miss (a
// stored empty value comes back as a non-nil empty slice). A non-nil err
// means the store failed, and FetchMany treats every key as a miss.
//
// SetMany stores vals[i] under keys[i] for ttls[i], as Set does.
type BatchCache interface {
	Cache
	GetMany(ctx context.Context, keys []string) (vals [][]byte, err error)
	SetMany(ctx context.Context, keys []string, vals [][]byte, ttls []time.Duration) error
}

// A BatchLocker is a Locker that takes and awaits many locks in one round
// trip. FetchMany uses it when the Locker implements it, and otherwise takes
// the locks one by one with Lock, in ascending id order.
//
// TryLockMany takes, without waiting and in one transaction, the lock on
// every id that no one else holds; held[i] reports whether it took ids[i].
// unlock releases every lock taken; it is nil when none was. On failure it
// returns a non-nil error and holds no lock.
//
// WaitMany waits until no one else holds any of ids, without taking them.
// FetchMany calls it holding no lock, so a batch never waits while holding
// a lock, and overlapping batches cannot deadlock.
type BatchLocker interface {
	Locker
	TryLockMany(ctx context.Context, ids []int64) (held []bool, unlock func(context.Context) error, err error)
	WaitMany(ctx context.Context, ids []int64) error
}

// A Clearer is a Cache that can remove every entry at once. Config.Local
// requires it (and [Deleter]); memstore is one.
type Clearer interface {
	Clear(ctx context.Context) error
}

// A Broadcaster is a Locker that also carries short messages to every
// process sharing it: pglock's Locker, through NOTIFY on its lock session.
// Groups with a local tier (Config.Local) use it to drop each other's
// copies of a changed value.
//
// Broadcast sends msg, at most MaxBroadcast bytes, to every subscriber of
// topic in every process, the sender's included, and returns once it is
// sent. Delivery is at most once.
//
// Subscribe calls receive with every message broadcast on topic until stop
// is called; receive must return quickly. It calls gap when the
// subscription is live (no message sent after that is missed until the
// next gap), and again whenever messages may have been missed and once the
// subscription is live again, so that a subscriber can drop what those
// messages would have told it to.
type Broadcaster interface {
	Locker
	Broadcast(ctx context.Context, topic string, msg []byte) error
	Subscribe(topic string, receive func(msg []byte), gap func()) (stop func(), err error)
}

// MaxBroadcast is the largest message a Group broadcasts; a Broadcaster
// must carry at least this many bytes.
const MaxBroadcast = 4096

// A Viewer is a Cache that can return a stored value without copying it.
// The local tier (Config.Local) uses it when its Cache implements it, so a
// local hit allocates nothing for the value. View returns bytes that never
// change afterwards (the store keeps its own copy of what Set gave it) and
// that the caller must not modify; memstore is one.
type Viewer interface {
	View(ctx context.Context, key string) (val []byte, ok bool, err error)
}
