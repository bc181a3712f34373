package pgflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// maxBatchRounds bounds how often FetchMany waits for other processes'
// computations of its keys before computing what is still missing without
// the lock: a bounded number of rounds cannot livelock.
const maxBatchRounds = 3

// FetchMany returns the values cached under keys, computing the ones that
// no process has with a single call of fn, which gets only those keys.
//
// It reads every key in one round trip when the Cache is a [BatchCache].
// For the keys still missing it takes the locks it can without waiting
// (one round trip with a [BatchLocker] such as pglock), reads them again,
// and calls fn once with the keys it holds; the keys that another process
// is computing it waits for, holding no lock, then reads. A batch never
// waits while it holds a lock, so overlapping batches in different
// processes cannot deadlock, and none waits for a key longer than the
// computation of that key. With a plain Locker it locks the keys one by one
// in ascending lock-id order instead.
//
// The returned map holds every key that has a value. A key that fn does not
// return is missing: it is absent from the map and is cached as missing for
// Config.MissingTTL, so other callers do not ask fn for it again meanwhile.
// An error from fn (or a panic, as a [*PanicError]) is returned and nothing
// is stored. Stale entries within their stale window are returned, but
// FetchMany does not refresh them in the background.
//
// FetchMany runs in the caller's goroutine and fn gets the caller's ctx.
// Unlike Fetch, it does not join other calls in this process: overlapping
// calls coordinate through the Locker, as processes do. Duplicate keys are
// fetched once; an empty key is [ErrInvalidKey]. [WithForceRefresh] is
// refused with an error (refresh keys one by one with Fetch); the other
// options apply to every key.
func FetchMany[T any](ctx context.Context, g *Group, keys []string, fn func(ctx context.Context, missing []string) (map[string]T, error), opts ...Option) (map[string]T, error) {
	if fn == nil {
		return nil, fmt.Errorf("pgflight: fetch many: nil fn")
	}
	uniq := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	o := g.options(opts)
	if o.err == nil && o.force {
		o.err = errManyForce
	}
	if o.err != nil {
		return nil, fmt.Errorf("pgflight: fetch many: %w", o.err)
	}
	if o.sync {
		if err := g.sync(ctx, subject{n: len(uniq)}); err != nil {
			return nil, err
		}
	}
	// Close cancels the batch and waits for it, as for Fetch's flights.
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, fmt.Errorf("pgflight: fetch many: %w", ErrClosed)
	}
	g.running.Add(1)
	g.mu.Unlock()
	defer g.running.Done()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(g.closing, func() { cancel(ErrClosed) })
	defer stop()
	b := &batch[T]{g: g, o: o, fn: fn, out: make(map[string]T, len(uniq))}
	if err := b.run(ctx, uniq); err != nil {
		if errors.Is(context.Cause(ctx), ErrClosed) {
			return nil, fmt.Errorf("pgflight: fetch many: %w", ErrClosed)
		}
		return nil, err
	}
	if g.isClosed() {
		return nil, fmt.Errorf("pgflight: fetch many: %w", ErrClosed)
	}
	return b.out, nil
}

// errManyForce refuses WithForceRefresh in FetchMany, which would
// otherwise return cached values without calling fn.
var errManyForce = errors.New("WithForceRefresh is not supported by FetchMany: refresh keys one by one with Fetch")

// batch is one FetchMany call.
type batch[T any] struct {
	g   *Group
	o   callOptions
	fn  func(context.Context, []string) (map[string]T, error)
	out map[string]T
}

func (b *batch[T]) run(ctx context.Context, keys []string) error {
	g := b.g
	pending := b.lookup(ctx, keys, &g.stats.hits, false)
	g.stats.misses.Add(uint64(len(pending)))
	wctx, cancel := g.lockWait(ctx)
	defer cancel()
	bl, ok := g.locker.(BatchLocker)
	if !ok {
		return b.lockEach(ctx, wctx, pending)
	}
	for round := 0; len(pending) > 0; round++ {
		if round == maxBatchRounds {
			// Holders keep failing: compute the rest without the lock.
			return b.lockFailed(ctx, pending, errHoldersFailed)
		}
		// Lock and compute what no one else computes, a chunk at a time,
		// so a batch never takes more than manyChunk locks at once.
		var theirs []string
		for chunk := range slices.Chunk(pending, manyChunk) {
			t, err := b.lockChunk(ctx, wctx, bl, chunk)
			if err != nil {
				return err
			}
			theirs = append(theirs, t...)
		}
		if len(theirs) == 0 {
			return nil
		}
		// Then wait, holding no lock, for the keys others hold (or that a
		// lock budget left untried: those are free, and the next round
		// takes them).
		ids, _ := b.ids(theirs)
		for chunk := range slices.Chunk(ids, manyChunk) {
			start := time.Now()
			err := bl.WaitMany(wctx, chunk)
			if err := g.lockWaited(ctx, wctx, subject{n: len(chunk)}, start, err); err != nil {
				return b.lockFailed(ctx, theirs, err)
			}
		}
		pending = b.lookup(ctx, theirs, &g.stats.received, true)
	}
	return nil
}

// manyChunk is how many keys FetchMany locks, or waits for, at once.
const manyChunk = 256

// lockChunk takes the locks of keys that no one holds, computes those keys
// still missing, releases them, and returns the keys it did not lock.
func (b *batch[T]) lockChunk(ctx, wctx context.Context, bl BatchLocker, keys []string) ([]string, error) {
	ids, byID := b.ids(keys)
	start := time.Now()
	held, unlock, err := bl.TryLockMany(wctx, ids)
	if err := b.g.lockWaited(ctx, wctx, subject{n: len(ids)}, start, err); err != nil {
		return nil, b.lockFailed(ctx, keys, err)
	}
	var ours, theirs []string
	for i, id := range ids {
		if held[i] {
			ours = append(ours, byID[id]...)
		} else {
			theirs = append(theirs, byID[id]...)
		}
	}
	if len(ours) > 0 {
		if err := b.computeHeld(ctx, ours, unlock); err != nil {
			return nil, err
		}
	}
	return theirs, nil
}

// lockEach locks keys one by one with a plain Locker, in ascending id
// order, then computes those still missing.
func (b *batch[T]) lockEach(ctx, wctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ids, _ := b.ids(keys)
	var unlocks []func(context.Context) error
	unlockAll := func(ctx context.Context) error {
		for _, u := range unlocks {
			u(ctx)
		}
		return nil
	}
	for _, id := range ids {
		start := time.Now()
		unlock, err := b.g.locker.Lock(wctx, id)
		if err = b.g.lockWaited(ctx, wctx, subject{n: 1}, start, err); err == nil && unlock == nil {
			err = errNoUnlock
		}
		if err != nil {
			b.g.release(ctx, unlockAll, b.subject(keys))
			return b.lockFailed(ctx, keys, err)
		}
		unlocks = append(unlocks, unlock)
	}
	return b.computeHeld(ctx, keys, unlockAll)
}

// lockFailed applies the fail-open policy (Group.lockFailed) to keys after
// a Locker error.
func (b *batch[T]) lockFailed(ctx context.Context, keys []string, err error) error {
	if err := b.g.lockFailed(ctx, b.subject(keys), err); err != nil {
		return err
	}
	return b.compute(ctx, keys)
}

// errHoldersFailed is the lock failure of keys that other processes held
// for maxBatchRounds rounds without storing them.
var errHoldersFailed = fmt.Errorf("other processes held these keys %d times without storing them", maxBatchRounds)

// subject names keys in errors and logs.
func (b *batch[T]) subject(keys []string) subject { return subject{n: len(keys)} }

// computeHeld re-reads keys, whose locks it holds, computes those still
// missing, stores them, then releases the locks.
func (b *batch[T]) computeHeld(ctx context.Context, keys []string, unlock func(context.Context) error) error {
	defer b.g.release(ctx, unlock, b.subject(keys))
	missing := b.lookup(ctx, keys, &b.g.stats.received, true)
	if len(missing) == 0 {
		return nil
	}
	return b.compute(ctx, missing)
}

// compute calls fn once for keys and stores what it returns, and the keys
// it does not return as missing, under the policy Fetch's flights follow
// (Group.compute, Group.encode, Group.store).
func (b *batch[T]) compute(ctx context.Context, keys []string) error {
	g := b.g
	cks := make([]string, len(keys))
	for i, k := range keys {
		cks[i] = cacheKey(g.cfg.Namespace, k)
	}
	es := make([]encoded, len(keys))
	fctx, ttl := withEntryTTL(ctx)
	tags := g.tags.section(ctx, b.o.tags) // before fn reads anything
	start := g.now()
	err := g.compute(ctx, b.subject(keys), func() error {
		vals, err := b.fn(fctx, keys)
		if err != nil {
			return err
		}
		for i, k := range keys {
			v, ok := vals[k]
			if !ok {
				es[i] = missingEntry(fmt.Sprintf("pgflight: %s: not returned by the batch: %v", quoteKey(k), ErrMissing))
				continue
			}
			if es[i], err = g.encode(cks[i], v, typed[T]{}); err != nil {
				return err
			}
		}
		return nil
	})
	end := g.now()
	if err != nil {
		return err // errors are never cached
	}
	for i, k := range keys {
		if es[i].flags&flagMissing == 0 {
			b.out[k], _ = es[i].v.(T)
		}
	}
	g.store(ctx, b.subject(keys), cks, es, tags, start, end, ttl.apply(b.o))
	return nil
}

// lookup reads keys, puts the values found in b.out, counts them in
// counter, and returns the keys still missing. A key cached as missing is
// found: it is simply absent from b.out.
//
// again says the keys were read before in this batch, so that an
// undecodable entry is counted once.
func (b *batch[T]) lookup(ctx context.Context, keys []string, counter interface{ Add(uint64) uint64 }, again bool) []string {
	o := b.o
	if again {
		o = o.again()
	}
	g := b.g
	cks := make([]string, len(keys))
	for i, k := range keys {
		cks[i] = cacheKey(g.cfg.Namespace, k)
	}
	raw := g.getMany(ctx, cks)
	var missing []string
	for i, k := range keys {
		if raw[i] == nil {
			missing = append(missing, k)
			continue
		}
		r := g.interpret(ctx, cks[i], raw[i], o, typed[T]{})
		switch {
		case !r.usable():
			missing = append(missing, k)
			continue
		case r.err != nil:
			g.stats.negativeHits.Add(1)
			counter.Add(1)
		default:
			b.out[k] = r.v.(T)
			counter.Add(1)
		}
		if g.obs != nil && !again {
			g.obs.Hit(ctx, HitData{Namespace: g.cfg.Namespace, Key: k, Stale: r.state == stale, Negative: r.err != nil})
		}
	}
	return missing
}

// ids returns the distinct lock ids of keys in ascending order (the global
// order that keeps lock-taking batches from deadlocking), and the keys of
// each id: colliding keys share a lock.
func (b *batch[T]) ids(keys []string) ([]int64, map[int64][]string) {
	byID := make(map[int64][]string, len(keys))
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		id := b.g.lockID(b.g.cfg.Namespace, k)
		if _, ok := byID[id]; !ok {
			ids = append(ids, id)
		}
		byID[id] = append(byID[id], k)
	}
	slices.Sort(ids)
	return ids, byID
}
