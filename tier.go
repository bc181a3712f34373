package pgflight

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"sync/atomic"
	"time"
)

// The local tier (Config.Local) keeps fresh copies of entries in process.
// A copy is dropped when any process of the namespace stores a new value
// or deletes the key: the process broadcasts the cache keys through the
// Locker (a Broadcaster), and every other Group of the namespace deletes
// its copies when the message arrives. After a gap in the broadcasts (the
// lock session lost, or listening again) the whole tier is dropped.
//
// A copy read from the shared Cache can race a broadcast: the read returns
// the old value, the broadcast for the new one arrives, then the copy is
// kept. Epochs close that window: every key hashes to one of tierBuckets
// counters, a broadcast (or a gap) bumps the counters of its keys before
// it deletes, and a copy is kept only if its counter did not move since
// the shared read began (and is dropped again if it moved while keeping).

// tierBuckets is the number of epoch counters.
const tierBuckets = 256

// Broadcast messages: a kind byte, the sender's id (8 bytes, so a Group
// skips its own messages), then for msgKeys the cache keys, each as a
// uvarint length and its bytes.
const (
	msgKeys byte = 'K' // drop the copies of these keys
	msgAll  byte = 'A' // drop every copy
)

// tier is a Group's local tier.
type tier struct {
	cache  Cache // implements Deleter and Clearer (checked by Config)
	ttl    time.Duration
	bc     Broadcaster // nil with the in-process Locker
	view   Viewer      // cache, if it can view; else nil
	nsLen  int         // len(namespace) + 1: a cache key minus that is the key
	seed   maphash.Seed
	live   atomic.Bool // broadcasts are received (always, without bc)
	epochs [tierBuckets]atomic.Uint64
	stop   func()
}

// newTier returns the local tier of g's config, subscribed to its
// namespace's broadcasts, or nil without Config.Local.
func newTier(g *Group) (*tier, error) {
	if g.cfg.Local == nil {
		return nil, nil
	}
	t := &tier{cache: g.cfg.Local, ttl: g.cfg.LocalTTL, seed: maphash.MakeSeed(), nsLen: len(g.cfg.Namespace) + 1}
	t.view, _ = g.cfg.Local.(Viewer)
	bc, ok := g.cfg.Locker.(Broadcaster)
	if !ok {
		t.live.Store(true)
		return t, nil
	}
	t.bc = bc
	stop, err := bc.Subscribe(g.cfg.Namespace, func(msg []byte) { g.received(msg) }, g.gap)
	if err != nil {
		return nil, err
	}
	t.stop = stop
	return t, nil
}

// isLive reports whether copies may be served: once the subscription is
// live, no broadcast can go unnoticed.
func (t *tier) isLive() bool { return t.live.Load() }

// The tier serves one Group, so it keys copies by the caller's key, not
// by the cache key: a local hit needs no cache key built.

// key returns the tier's key of the cache key ck.
func (t *tier) key(ck string) string { return ck[t.nsLen:] }

// epoch returns the epoch counter of key.
func (t *tier) epoch(key string) *atomic.Uint64 {
	return &t.epochs[maphash.String(t.seed, key)%tierBuckets]
}

// getLocal returns the local copy of key, if the tier is live and has one;
// viewed says the bytes are shared with the tier (see Viewer).
func (g *Group) getLocal(ctx context.Context, key string) (b []byte, viewed, ok bool) {
	t := g.tier
	if !t.isLive() {
		return nil, false, false
	}
	var err error
	if t.view != nil {
		b, ok, err = t.view.View(ctx, key)
		return b, true, ok && err == nil
	}
	b, ok, err = t.cache.Get(ctx, key)
	return b, false, ok && err == nil
}

// keepLocal keeps b, the entry e of ck read from the shared Cache, as a
// local copy, unless a broadcast about ck arrived since epoch was taken,
// before the read.
func (g *Group) keepLocal(ctx context.Context, ck string, b []byte, e entry, epoch uint64) {
	t := g.tier
	ttl := min(t.ttl, time.Duration(e.freshUntil-g.now().UnixNano()))
	if ttl <= 0 || !t.isLive() {
		return
	}
	key := t.key(ck)
	ep := t.epoch(key)
	if ep.Load() != epoch {
		return
	}
	t.cache.Set(ctx, key, b, ttl)
	if ep.Load() != epoch {
		t.cache.(Deleter).Delete(ctx, key) // a broadcast came while we kept it
	}
}

// storedLocal keeps the entries just stored under cks as local copies,
// for at most ttls (their fresh times), and tells the other processes to
// drop theirs. The broadcast goes in the background: the callers need not
// wait for it.
func (g *Group) storedLocal(ctx context.Context, cks []string, bufs [][]byte, fresh []time.Duration) {
	t := g.tier
	for i, ck := range cks {
		if ttl := min(t.ttl, fresh[i]); ttl > 0 {
			key := t.key(ck)
			t.epoch(key).Add(1) // a copy kept by a read in flight is older
			t.cache.Set(ctx, key, bufs[i], ttl)
		}
	}
	if t.bc == nil {
		return
	}
	g.background(func() {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := g.broadcast(bctx, cks); err != nil {
			g.log.warn(warnBroadcast, "pgflight: could not tell other processes to drop their local copies", "keys", len(cks), "err", err)
		}
	})
}

// deletedLocal drops the local copy of ck, if any, and tells the other
// processes to drop theirs, before Delete returns. It broadcasts whenever
// the Locker can, local tier or not, so that a process without one (an
// operator's tool) can invalidate the copies of those that have one.
func (g *Group) deletedLocal(ctx context.Context, ck string) error {
	t := g.tier
	if t != nil {
		key := t.key(ck)
		t.epoch(key).Add(1)
		t.cache.(Deleter).Delete(ctx, key)
	}
	if g.bc == nil {
		return nil
	}
	if err := g.broadcast(ctx, []string{ck}); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err // unsupported: pglock in transaction mode, where no Group has a local tier
	}
	return nil
}

// broadcast tells every other Group of the namespace to drop its copies of
// cks, in messages of at most MaxBroadcast bytes; a key too long for one
// makes it drop every copy.
func (g *Group) broadcast(ctx context.Context, cks []string) error {
	head := make([]byte, 9, MaxBroadcast)
	head[0] = msgKeys
	binary.BigEndian.PutUint64(head[1:], g.self)
	msg, n := head, 0
	send := func() error {
		if n == 0 {
			return nil
		}
		err := g.bc.Broadcast(ctx, g.cfg.Namespace, msg)
		g.observeInvalidation(ctx, false, n, false, err)
		msg, n = append(msg[:0:0], head...), 0
		return err
	}
	for _, ck := range cks {
		if binary.MaxVarintLen64+len(ck) > MaxBroadcast-len(head) {
			all := append([]byte{msgAll}, head[1:]...)
			err := g.bc.Broadcast(ctx, g.cfg.Namespace, all)
			g.observeInvalidation(ctx, false, 0, true, err)
			return err
		}
		if len(msg)+binary.MaxVarintLen64+len(ck) > MaxBroadcast {
			if err := send(); err != nil {
				return err
			}
		}
		msg = binary.AppendUvarint(msg, uint64(len(ck)))
		msg = append(msg, ck...)
		n++
	}
	return send()
}

// observeInvalidation tells the Observer of a broadcast sent or received.
func (g *Group) observeInvalidation(ctx context.Context, received bool, keys int, all bool, err error) {
	if g.obs != nil {
		g.obs.Invalidation(ctx, InvalidationData{Namespace: g.cfg.Namespace, Received: received, Keys: keys, All: all, Err: err})
	}
}

// received handles a broadcast of the namespace. It runs in the
// Broadcaster's goroutine.
func (g *Group) received(msg []byte) {
	t := g.tier
	if len(msg) < 9 || binary.BigEndian.Uint64(msg[1:9]) == g.self {
		return
	}
	g.stats.invalidations.Add(1)
	ctx := context.Background()
	switch msg[0] {
	case msgAll:
		g.dropLocal()
		g.observeInvalidation(ctx, true, 0, true, nil)
	case msgKeys:
		keys := 0 // -1: malformed, reported already
		defer func() {
			if keys >= 0 {
				g.observeInvalidation(ctx, true, keys, false, nil)
			}
		}()
		for b := msg[9:]; len(b) > 0; {
			n, w := binary.Uvarint(b)
			if w <= 0 || uint64(len(b)-w) < n {
				g.dropLocal() // malformed: trust nothing
				g.observeInvalidation(ctx, true, 0, true, nil)
				keys = -1
				return
			}
			ck := string(b[w : w+int(n)])
			b = b[w+int(n):]
			if len(ck) < t.nsLen || ck[:t.nsLen-1] != g.cfg.Namespace {
				continue // not a key of this namespace: ignore it
			}
			key := t.key(ck)
			t.epoch(key).Add(1)
			t.cache.(Deleter).Delete(ctx, key)
			keys++
		}
	}
}

// gap drops every local copy: broadcasts may have been missed. The first
// gap makes the tier live.
func (g *Group) gap() {
	g.dropLocal()
	g.tier.live.Store(true)
}

// dropLocal drops every local copy.
func (g *Group) dropLocal() {
	t := g.tier
	for i := range t.epochs {
		t.epochs[i].Add(1)
	}
	t.cache.(Clearer).Clear(context.Background())
	g.stats.localDrops.Add(1)
}
