package pgflight

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Tags (WithTags) and Clear invalidate by version, with no index of keys
// per tag. Every tag of a namespace has a version, 0 until the tag is first
// invalidated, and so does the namespace's Clear (the empty tag). An entry
// records, in its envelope, the versions of its tags and of Clear as they
// stood when its computation began; InvalidateTags and Clear increment
// them. A read that finds a version newer than the entry's treats the
// entry as absent: a computation that began before the invalidation
// stored what it had read before it, and is a miss afterwards.
//
// With a TagSource (pglock) the versions live in the database. A Group
// learns those of the tags it meets with one query, keeps them, and
// forgets a tag when a process invalidates it (the TagSource tells every
// Group), or all of them after a gap in those messages; the next read of
// a forgotten tag asks again. So a hit checks its tags in memory. Without a
// TagSource the versions live in the Group: tags and Clear then act in this
// process only.

// maxTags bounds the tags of one call (WithTags), and maxTagLen a tag.
const (
	maxTags   = 64
	maxTagLen = 256
)

// tagRetry is how long a Group that could not learn the versions of tags
// from its TagSource waits before it asks again; meanwhile the tags it does
// not know are taken as not invalidated (see tagState.versions).
const tagRetry = time.Second

// maxKnownTags bounds the versions a Group keeps: past it, it forgets them
// all and learns again the ones it meets.
const maxKnownTags = 1 << 16

// tagBuckets is the number of forget counters (see tagState.forgot).
const tagBuckets = 64

// A TagSource is a Locker that also keeps the versions of a namespace's
// tags in its database, shared by every process: pglock's Locker. A Group
// whose Locker is a TagSource uses it for WithTags, InvalidateTags and
// Clear; without one, tags and Clear act in the Group alone. The empty tag
// stands for the namespace's Clear.
//
// TagVersions returns the current version of each of tags in namespace
// (0 for a tag never invalidated). InvalidateTags increments them and
// returns the new versions, and tells every process's WatchTags of them.
//
// WatchTags calls forget with the tags of namespace that any process has
// invalidated (nil: possibly any tag), until stop is called; forget must
// return quickly. Like Broadcaster.Subscribe, it calls gap when the watch
// is live and again whenever messages may have been missed.
type TagSource interface {
	Locker
	TagVersions(ctx context.Context, namespace string, tags []string) ([]uint64, error)
	InvalidateTags(ctx context.Context, namespace string, tags []string) ([]uint64, error)
	WatchTags(namespace string, forget func(tags []string), gap func()) (stop func(), err error)
}

// WithTags tags the entries a call stores, so that InvalidateTags of any of
// tags (or pglock.InvalidateTags in a transaction) turns them into misses,
// in every process. A tag is 1 to 256 bytes; a call takes at most 64. A hit
// checks the entry's own tags, those it was stored with, whatever the
// call's WithTags.
func WithTags(tags ...string) Option {
	return func(o *callOptions) {
		if err := checkTags(tags); err != nil {
			o.err = fmt.Errorf("WithTags: %w", err)
			return
		}
		o.tags = tags
	}
}

// checkTags reports whether tags can tag an entry or be invalidated.
func checkTags(tags []string) error {
	if len(tags) > maxTags {
		return fmt.Errorf("%d tags, at most %d", len(tags), maxTags)
	}
	for _, t := range tags {
		if t == "" {
			return errors.New("empty tag")
		}
		if len(t) > maxTagLen {
			return fmt.Errorf("tag %s of %d bytes, at most %d", quoteKey(t), len(t), maxTagLen)
		}
	}
	return nil
}

// tagState is a Group's view of its namespace's tag versions.
type tagState struct {
	g    *Group
	src  TagSource // nil: the versions live here
	seed maphash.Seed
	stop func()

	// clear is the version of Clear when known, else -1: a hit on an
	// entry without tags checks it without a lock.
	clear atomic.Int64

	mu    sync.RWMutex
	known map[string]uint64 // with src, what was learned since the last gap
	live  bool              // with src, the watch is live: learned versions are kept
	// forgot counts the forgets of the tags that hash to each bucket: a
	// lookup keeps what it learned only if no forget of its tags came
	// meanwhile.
	forgot  [tagBuckets]uint64
	retryAt time.Time // with src, no lookup before then (one just failed)
}

// newTagState returns g's tag state, watching its TagSource if it has one.
func newTagState(g *Group) (*tagState, error) {
	ts := &tagState{g: g, seed: maphash.MakeSeed(), known: make(map[string]uint64)}
	src, ok := g.locker.(TagSource)
	if !ok {
		ts.live = true
		return ts, nil
	}
	ts.src = src
	ts.clear.Store(-1)
	stop, err := src.WatchTags(g.cfg.Namespace, ts.forget, ts.gap)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return ts, nil // pglock in transaction mode: every lookup asks
		}
		return nil, err
	}
	ts.stop = stop
	return ts, nil
}

// bucket returns tag's forget counter.
func (ts *tagState) bucket(tag string) *uint64 {
	return &ts.forgot[maphash.String(ts.seed, tag)%tagBuckets]
}

// forget drops what is known of tags (nil: of every tag), invalidated by
// some process. It runs in the TagSource's goroutine.
func (ts *tagState) forget(tags []string) {
	clears := slices.Contains(tags, "")
	if tags == nil || clears {
		defer ts.learnClear()
	}
	if ts.g.tier != nil && clears {
		defer ts.g.dropLocal() // every copy is a miss now: free the memory
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tags == nil {
		ts.forgetAll()
		return
	}
	for _, t := range tags {
		delete(ts.known, t)
		*ts.bucket(t)++
		if t == "" {
			ts.clear.Store(-1)
		}
	}
}

// gap forgets every version: invalidations may have been missed. The first
// gap makes the watch live.
func (ts *tagState) gap() {
	ts.mu.Lock()
	ts.forgetAll()
	ts.live = true
	ts.mu.Unlock()
	ts.learnClear()
}

// learnClear looks up the version of the namespace's Clear in the
// background, after it was forgotten: every read and every computation
// needs it, and none should wait for a round trip to learn it (a cold
// start's first computations, every follower's first read).
func (ts *tagState) learnClear() {
	ts.g.background(func() {
		ctx, cancel := context.WithTimeout(ts.g.closing, releaseTimeout)
		defer cancel()
		ts.lookup(ctx, []string{""}, true)
	})
}

// forgetAll forgets every version; ts.mu is held.
func (ts *tagState) forgetAll() {
	clear(ts.known)
	for i := range ts.forgot {
		ts.forgot[i]++
	}
	ts.clear.Store(-1)
}

// versions returns the current versions of tags, from memory, or for the
// tags it does not know from the TagSource. ok is false when the TagSource
// could not be asked (it failed within tagRetry): the caller then takes
// the tags as not invalidated, which is the fail-open policy for tags (a
// process that cannot reach the database serves what it has, and stores
// entries that record no newer version than they saw).
func (ts *tagState) versions(ctx context.Context, tags []string) (vs []uint64, ok bool) {
	return ts.lookup(ctx, tags, false)
}

// lookup is versions; force asks the TagSource even within tagRetry of a
// failure (a background lookup, which no caller waits for). An answer
// ends the pause after a failure.
func (ts *tagState) lookup(ctx context.Context, tags []string, force bool) (vs []uint64, ok bool) {
	vs = make([]uint64, len(tags))
	var missing []int
	var marks []uint64
	ts.mu.RLock()
	for i, t := range tags {
		v, have := ts.known[t]
		if !have && ts.src != nil {
			missing = append(missing, i)
			marks = append(marks, *ts.bucket(t))
		}
		vs[i] = v
	}
	retryAt := ts.retryAt
	ts.mu.RUnlock()
	if len(missing) == 0 {
		return vs, true
	}
	if !force && time.Now().Before(retryAt) {
		return vs, false
	}
	ask := make([]string, len(missing))
	for j, i := range missing {
		ask[j] = tags[i]
	}
	ts.g.stats.tagLookups.Add(1)
	got, err := ts.src.TagVersions(ctx, ts.g.cfg.Namespace, ask)
	if err == nil && len(got) != len(ask) {
		err = fmt.Errorf("TagVersions returned %d versions for %d tags", len(got), len(ask))
	}
	if err != nil {
		if ctx.Err() == nil {
			ts.mu.Lock()
			ts.retryAt = time.Now().Add(tagRetry)
			ts.mu.Unlock()
			ts.g.log.warn(warnTags, "pgflight: could not learn the versions of tags; entries are served unchecked against invalidations this process has not heard of", "tags", len(ask), "err", err)
		}
		return vs, false
	}
	ts.mu.Lock()
	ts.retryAt = time.Time{}
	for j, i := range missing {
		vs[i] = got[j]
		if ts.live && *ts.bucket(ask[j]) == marks[j] {
			ts.learn(ask[j], got[j])
		}
	}
	ts.mu.Unlock()
	return vs, true
}

// learn keeps v as tag's version, unless a newer one is known; ts.mu is
// held.
func (ts *tagState) learn(tag string, v uint64) {
	if len(ts.known) >= maxKnownTags {
		ts.forgetAll()
	}
	if old, have := ts.known[tag]; !have || v > old {
		ts.known[tag] = v
	}
	if tag == "" {
		ts.clear.Store(int64(ts.known[tag]))
	}
}

// section returns the tag section for an entry tagged with tags whose
// computation begins now: the current versions of Clear and of tags. A
// version it cannot learn is recorded as 0, so that a process that knows
// better takes the entry as invalidated.
func (ts *tagState) section(ctx context.Context, tags []string) tagSection {
	if len(tags) == 0 && ts.clear.Load() == 0 {
		return nil
	}
	vs, _ := ts.versions(ctx, append([]string{""}, tags...))
	return appendTagSection(nil, vs[0], tags, vs[1:])
}

// current reports whether e was stored after the last invalidation of its
// tags and of the namespace's Clear. It needs no lock for an entry without
// tags while Clear's version is known to be the entry's.
func (ts *tagState) current(ctx context.Context, e entry) bool {
	if e.tags == nil && ts.clear.Load() == 0 {
		return true
	}
	recorded := e.tags.clear()
	if c := ts.clear.Load(); c >= 0 && uint64(c) > recorded {
		return false
	}
	// Fast path: every tag known, checked under the read lock, with no
	// allocation (each keeps no reference to its func).
	fresh, known := true, true
	ts.mu.RLock()
	if _, have := ts.known[""]; !have && ts.src != nil {
		known = false
	}
	e.tags.each(func(tag []byte, v uint64) bool {
		kv, have := ts.known[string(tag)]
		if !have && ts.src != nil {
			known = false
		}
		fresh = kv <= v
		return fresh
	})
	ts.mu.RUnlock()
	if !fresh || known {
		return fresh
	}
	names := []string{""}
	recordedVs := []uint64{recorded}
	e.tags.each(func(tag []byte, v uint64) bool {
		names = append(names, string(tag))
		recordedVs = append(recordedVs, v)
		return true
	})
	vs, ok := ts.versions(ctx, names)
	if !ok {
		return true // fail open: see versions
	}
	for i, v := range vs {
		if v > recordedVs[i] {
			return false
		}
	}
	return true
}

// invalidate increments the versions of tags (the empty tag: Clear), in
// the TagSource or in the Group, and keeps the new ones: later reads in
// this process see them at once, other processes when the TagSource tells
// them.
func (ts *tagState) invalidate(ctx context.Context, tags []string) error {
	if ts.src == nil {
		ts.mu.Lock()
		for _, t := range tags {
			ts.learn(t, ts.known[t]+1)
		}
		ts.mu.Unlock()
	} else {
		vs, err := ts.src.InvalidateTags(ctx, ts.g.cfg.Namespace, tags)
		if err == nil && len(vs) != len(tags) {
			err = fmt.Errorf("InvalidateTags returned %d versions for %d tags", len(vs), len(tags))
		}
		if err != nil {
			return err
		}
		ts.mu.Lock()
		if ts.live {
			for i, t := range tags {
				ts.learn(t, vs[i])
			}
		}
		ts.mu.Unlock()
	}
	return nil
}

// InvalidateTags makes every entry of the namespace stored with any of tags
// (WithTags) by a computation that began before the call a miss, in every
// process sharing the Locker: the next Fetch of such a key computes. Once
// it returns, this process sees the invalidation; other processes see it
// when pglock's notification reaches them, as for a local tier's copies
// (see the README's section on invalidation). Entries stay in the Cache
// until their TTL, as misses. Without a TagSource (the in-process Locker),
// it acts in this Group only.
//
// It takes no lock and waits for no computation: a computation in flight
// recorded the older version and its value is a miss when stored. ctx
// bounds the database round trip; an error means nothing was invalidated.
func (g *Group) InvalidateTags(ctx context.Context, tags ...string) error {
	if err := checkTags(tags); err != nil {
		return fmt.Errorf("pgflight: invalidate tags: %w: %w", ErrInvalidKey, err)
	}
	if len(tags) == 0 {
		return nil
	}
	if g.isClosed() {
		return fmt.Errorf("pgflight: invalidate tags: %w", ErrClosed)
	}
	if err := g.tags.invalidate(ctx, tags); err != nil {
		return fmt.Errorf("pgflight: invalidate tags: %w", err)
	}
	return nil
}

// Clear makes every entry of the namespace stored by a computation that
// began before the call a miss, in every process sharing the Locker, as
// InvalidateTags does for a tag that every entry has. The local tier of
// every process is emptied as well. Entries stay in the Cache until their
// TTL, as misses; Clear deletes nothing there, so it costs one round trip
// whatever the number of entries.
func (g *Group) Clear(ctx context.Context) error {
	if g.isClosed() {
		return fmt.Errorf("pgflight: clear: %w", ErrClosed)
	}
	if err := g.tags.invalidate(ctx, []string{""}); err != nil {
		return fmt.Errorf("pgflight: clear: %w", err)
	}
	if g.tier != nil {
		g.dropLocal()
	}
	return nil
}

// A Syncer is a Locker that can wait until this process has received
// every broadcast committed, by any process, before the call, and has
// acted on it: pglock's Locker, with one round trip on its lock session.
// WithConsistentRead uses it.
type Syncer interface {
	Locker
	Sync(ctx context.Context) error
}

// WithConsistentRead makes a Fetch or FetchMany first wait until this
// process has heard of every invalidation that reaches it by notification
// and was committed before the call began: another process's
// InvalidateTags and Clear (direct, or pglock.InvalidateTags and
// pglock.Clear in a committed transaction), and the broadcasts of its
// Delete, Set and Expire that drop local-tier copies. So no value that
// those invalidated is served, whatever the notifications' delay: a read
// that begins after such a COMMIT returned sees it.
//
// It costs one round trip on pglock's lock session per call (shared with
// the lock operations and consistent reads pending then; no pool
// connection), and the call joins no flight of this process that began
// before it. With the in-process Locker, or pglock in transaction mode
// (which learns tag versions on every read), it costs nothing. The keys of
// pglock.Invalidate are not covered: a handler deletes them after the
// notification, so tag the entries and use pglock.InvalidateTags where a
// read must see a committed invalidation at once. If the round trip fails
// the read goes on without it (logged), or with Config.FailClosed returns
// an error wrapping ErrLockUnavailable.
func WithConsistentRead() Option {
	return func(o *callOptions) { o.sync = true }
}

// sync waits, for a consistent read of s, until the Locker has delivered
// every broadcast committed before it (see WithConsistentRead).
func (g *Group) sync(ctx context.Context, s subject) error {
	sy, ok := g.locker.(Syncer)
	if !ok {
		return nil
	}
	err := sy.Sync(ctx)
	if err == nil || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pgflight: %s: %w", s.op(), context.Cause(ctx))
	}
	if g.cfg.FailClosed {
		return fmt.Errorf("pgflight: %s: consistent read: %w: %w", s.op(), ErrLockUnavailable, err)
	}
	k, v := s.attr()
	g.log.warn(warnTags, "pgflight: consistent read could not sync with the lock session; reading without it", k, v, "err", err)
	return nil
}
