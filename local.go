package pgflight

import (
	"context"
	"errors"
	"sync"
	"time"
)

// localLocker is the default Locker: exclusive locks on ids inside one
// process. It implements Follower, so it behaves like pglock in miniature.
type localLocker struct {
	mu   sync.Mutex
	held map[int64]chan struct{} // closed when the holder unlocks
}

func newLocalLocker() *localLocker {
	return &localLocker{held: make(map[int64]chan struct{})}
}

func (l *localLocker) Lock(ctx context.Context, id int64) (func(context.Context) error, error) {
	for {
		unlock, released := l.try(id)
		if unlock != nil {
			return unlock, nil
		}
		select {
		case <-released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *localLocker) LockOrFollow(ctx context.Context, id int64) (func(context.Context) error, error) {
	unlock, released := l.try(id)
	if unlock != nil {
		return unlock, nil
	}
	select {
	case <-released:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var errUnlocked = errors.New("pgflight: lock already released")

// try takes the lock on id if it is free, or returns the channel its
// current holder closes on release.
func (l *localLocker) try(id int64) (unlock func(context.Context) error, released <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.held[id]; ok {
		return nil, ch
	}
	ch := make(chan struct{})
	l.held[id] = ch
	var once sync.Once
	return func(context.Context) error {
		err := errUnlocked
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, id)
			l.mu.Unlock()
			close(ch)
			err = nil
		})
		return err
	}, nil
}

// localCache is the default Cache: a bounded map inside one process. The
// core imports only the standard library, so this is deliberately minimal;
// memstore is the tuned in-process cache.
type localCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]localEntry
}

type localEntry struct {
	val     []byte
	expires time.Time
}

const localCacheMax = 10_000

func newLocalCache() *localCache {
	return &localCache{max: localCacheMax, entries: make(map[string]localEntry)}
}

func (c *localCache) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && !time.Now().Before(e.expires) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	return append([]byte(nil), e.val...), true, nil
}

func (c *localCache) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	e := localEntry{val: append([]byte(nil), val...), expires: time.Now().Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evict()
	}
	c.entries[key] = e
	return nil
}

func (c *localCache) Delete(_ context.Context, key string) error {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
	return nil
}

// evict drops expired entries, or failing that an arbitrary tenth of the
// entries (Go's map iteration order is random). c.mu is held.
func (c *localCache) evict() {
	now := time.Now()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max-c.max/10 {
			break
		}
		delete(c.entries, k)
	}
}

// TryLock takes the lock on id if it is free, and otherwise returns a nil
// unlock at once.
func (l *localLocker) TryLock(_ context.Context, id int64) (func(context.Context) error, error) {
	unlock, _ := l.try(id)
	return unlock, nil
}

// TryLockMany takes every free lock among ids.
func (l *localLocker) TryLockMany(_ context.Context, ids []int64) ([]bool, func(context.Context) error, error) {
	held := make([]bool, len(ids))
	var unlocks []func(context.Context) error
	for i, id := range ids {
		if unlock, _ := l.try(id); unlock != nil {
			held[i] = true
			unlocks = append(unlocks, unlock)
		}
	}
	if len(unlocks) == 0 {
		return held, nil, nil
	}
	return held, func(ctx context.Context) error {
		var err error
		for _, u := range unlocks {
			err = errors.Join(err, u(ctx))
		}
		return err
	}, nil
}

// WaitMany waits until none of ids is held.
func (l *localLocker) WaitMany(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		for {
			l.mu.Lock()
			ch, ok := l.held[id]
			l.mu.Unlock()
			if !ok {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
