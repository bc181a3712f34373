package pgflight

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// This file is the flight policy: what happens when fn fails or panics,
// when the Codec fails, when the Locker fails, and how values are stored
// and locks released. Fetch's flights, FetchMany's batches and background
// refreshes differ only in how they take locks; each calls these.

// subject names what a policy decision is about, in errors and logs: one
// key (key, and its cache key ck), or a batch of n keys.
type subject struct {
	key, ck string
	n       int
	verb    string // "delete", "set", "expire": not a computation
}

// op returns the operation for an error message: `fetch "key"` or
// `fetch many`.
func (s subject) op() string {
	switch {
	case s.n > 0:
		return "fetch many"
	case s.verb != "":
		return s.verb + " " + quoteKey(s.key)
	}
	return "fetch " + quoteKey(s.key)
}

// attr returns the log attribute that names the subject.
func (s subject) attr() (string, any) {
	if s.n > 0 {
		return "keys", s.n
	}
	return "key", logKey(s.ck)
}

// count returns how many keys the subject covers.
func (s subject) count() uint64 { return uint64(max(s.n, 1)) }

// compute runs call, which calls fn and encodes what it returned, as one
// computation. A panic in fn (or in the Codec) is recovered here, where fn
// runs, and goes to every caller as a *PanicError. Letting it unwind would
// kill the process from a goroutine that no caller can recover in; the
// flight's deferred release still runs, so the lock is released, and
// nothing is stored.
func (g *Group) compute(ctx context.Context, s subject, call func() error) (err error) {
	g.stats.computations.Add(1)
	var start time.Time
	if g.obs != nil {
		start = time.Now()
	}
	returned := false
	defer func() {
		if r := recover(); r != nil {
			g.stats.panics.Add(1)
			err = &PanicError{Value: r, Stack: debug.Stack()}
		} else if !returned {
			err = ErrGoexit // fn called runtime.Goexit, which goes on unwinding
		}
		if g.obs != nil {
			g.obs.Compute(ctx, ComputeData{Namespace: g.cfg.Namespace, Key: s.key, Keys: s.n, Duration: time.Since(start), Err: err})
		}
	}()
	err = call()
	returned = true
	return err
}

// encoded is one key's computed result, ready to be sealed and stored: the
// value for the callers (decoded back when T holds an interface, see
// encodeValue), its payload and flags.
type encoded struct {
	v       any
	payload []byte
	flags   byte
}

// encode encodes v, one key's value, by ops. A value the Codec cannot
// encode is an *EncodeError, counted.
func (g *Group) encode(ck string, v any, ops valueOps) (encoded, error) {
	var e encoded
	var err error
	if e.v, e.payload, e.flags, err = ops.encode(g.cfg.Codec, v); err != nil {
		g.stats.encodeErrors.Add(1)
		return encoded{}, &EncodeError{Key: ck, Err: err}
	}
	return e, nil
}

// storedAsMissing reports whether fn's error err is cached as a negative
// entry: it wraps ErrMissing and is not a panic. Other errors are never
// cached.
func storedAsMissing(err error) bool {
	var pe *PanicError
	return errors.Is(err, ErrMissing) && !errors.As(err, &pe)
}

// missingEntry returns the negative entry for a key found missing, with
// msg as the error that hits return.
func missingEntry(msg string) encoded {
	return encoded{payload: []byte(msg), flags: flagMissing}
}

// store seals the entries computed between start and end, with the tag
// section tags taken before the computation began, and writes them under
// cks. It runs without the callers' cancellation: the values are good
// even if they have all gone. A failed write is counted and logged; the
// values are still returned.
func (g *Group) store(ctx context.Context, s subject, cks []string, es []encoded, tags tagSection, start, end time.Time, o callOptions) {
	bufs := make([][]byte, len(es))
	ttls := make([]time.Duration, len(es))
	fresh := make([]time.Duration, len(es))
	for i, e := range es {
		bufs[i], ttls[i], fresh[i] = g.seal(e.payload, e.flags, tags, start, end, o)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	err := g.setMany(sctx, cks, bufs, ttls)
	if err != nil {
		g.stats.cacheErrors.Add(1)
		k, v := s.attr()
		g.log.warn(warnCacheSet, "pgflight: cache write failed, value returned uncached", k, v, "err", err)
	}
	if g.tier != nil {
		g.storedLocal(sctx, cks, bufs, fresh)
	}
	if g.obs != nil {
		n := 0
		for _, b := range bufs {
			n += len(b)
		}
		g.obs.Store(ctx, StoreData{Namespace: g.cfg.Namespace, Key: s.key, Keys: s.n, Bytes: n, Err: err})
	}
}

// lockFailed applies the fail-open policy after the Locker failed with
// err. It returns nil when the caller should compute without the lock
// (counted per key, and logged); otherwise the error to return: the cause
// if ctx ended (every caller left, or Close), or with Config.FailClosed an
// error wrapping ErrLockUnavailable.
func (g *Group) lockFailed(ctx context.Context, s subject, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if g.cfg.FailClosed {
		return fmt.Errorf("pgflight: %s: %w: %w", s.op(), ErrLockUnavailable, err)
	}
	g.stats.failOpens.Add(s.count())
	k, v := s.attr()
	msg := "pgflight: lock unavailable, computing without it"
	if s.verb != "" {
		msg = "pgflight: lock unavailable, going on without waiting for computations in flight"
	}
	g.log.warn(warnLocker, msg, k, v, "err", err)
	if g.obs != nil {
		g.obs.FailOpen(ctx, FailOpenData{Namespace: g.cfg.Namespace, Key: s.key, Keys: s.n, Err: err})
	}
	return nil
}

// errNoUnlock reports a Locker that returned neither an unlock nor an error.
var errNoUnlock = errors.New("locker returned a nil unlock func")

// lockWait returns the context that bounds all of one flight's waits for
// the lock together: ctx, cut at Config.LockWait.
func (g *Group) lockWait(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.cfg.LockWait > 0 {
		return context.WithTimeout(ctx, g.cfg.LockWait)
	}
	return ctx, func() {}
}

// lockWaited accounts for a lock call about s that began at start under
// wctx, which lockWait derived from ctx, and returned err: it counts the
// time in Stats.LockWait, says so in the error when LockWait cut it short,
// and tells the Observer.
func (g *Group) lockWaited(ctx, wctx context.Context, s subject, start time.Time, err error) error {
	d := time.Since(start)
	g.stats.lockWait.Add(int64(d))
	timedOut := err != nil && ctx.Err() == nil && wctx.Err() != nil
	if timedOut {
		g.stats.lockTimeouts.Add(1)
		err = fmt.Errorf("lock wait exceeded %v: %w", g.cfg.LockWait, err)
	}
	if g.obs != nil {
		g.obs.LockWait(ctx, LockWaitData{Namespace: g.cfg.Namespace, Key: s.key, Keys: s.n, Duration: d, Err: err, TimedOut: timedOut})
	}
	return err
}

// release unlocks with a context that outlives the flight's cancellation:
// a lock must be released even when every caller has gone.
func (g *Group) release(ctx context.Context, unlock func(context.Context) error, s subject) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := unlock(rctx); err != nil {
		// pglock closes the connection when it cannot commit, so
		// PostgreSQL drops the lock with the session. An error here also
		// means the lock may have been lost while held (pglock: the
		// session died), so another process may have computed too.
		g.stats.locksLost.Add(s.count())
		k, v := s.attr()
		g.log.warn(warnRelease, "pgflight: release lock", k, v, "err", err)
	}
}

// SetTTL sets, from inside fn and with the context Fetch (or FetchMany)
// passed it, how long the value fn returns stays fresh, instead of
// Config.TTL or WithTTL: the TTL can then follow the value (a token's
// expiry, a schedule). For FetchMany it applies to every value of the
// batch. ttl must be in (0, MaxTTL]; otherwise, or when ctx is not a
// context fn was given, SetTTL returns an error and changes nothing. The
// last call wins; TTLJitter still applies, and so does the stale window.
func SetTTL(ctx context.Context, ttl time.Duration) error {
	t, ok := ctx.Value(entryTTLKey{}).(*entryTTL)
	if !ok {
		return errors.New("pgflight: SetTTL: not called with the context of a computation")
	}
	if err := checkDuration("SetTTL", ttl, true); err != nil {
		return fmt.Errorf("pgflight: %w", err)
	}
	t.ttl.Store(int64(ttl))
	return nil
}

// entryTTL is the TTL fn chose with SetTTL, 0 if none.
type entryTTL struct{ ttl atomic.Int64 }

type entryTTLKey struct{}

// withEntryTTL returns the context fn runs with, where SetTTL finds where
// to record its choice.
func withEntryTTL(ctx context.Context) (context.Context, *entryTTL) {
	t := new(entryTTL)
	return context.WithValue(ctx, entryTTLKey{}, t), t
}

// apply returns o with fn's choice of TTL, if it made one.
func (t *entryTTL) apply(o callOptions) callOptions {
	if d := time.Duration(t.ttl.Load()); d > 0 {
		o.ttl = d
	}
	return o
}

// failSafe answers a computation that failed with err with the value kept
// for Config.FailSafe, if the cache has one young enough, and marks it
// fresh for Config.FailSafeThrottle so that the fleet does not ask the
// failing source again meanwhile.
func (f *flight) failSafe(ctx context.Context, err error) (any, bool) {
	g := f.g
	if g.cfg.FailSafe <= 0 {
		return nil, false
	}
	r := g.read(ctx, f.ck(), f.o.again(), f.ops)
	now := g.now()
	left := time.Duration(r.e.computedAt + int64(g.cfg.FailSafe) - now.UnixNano())
	if r.state == absent || r.err != nil || left <= 0 {
		return nil, false
	}
	g.stats.failSafes.Add(1)
	g.log.warn(warnFailSafe, "pgflight: computation failed, serving the kept value", "key", logKey(f.ck()), "age", now.Sub(time.Unix(0, r.e.computedAt)), "err", err)
	e := r.e
	e.freshUntil = now.Add(min(g.cfg.FailSafeThrottle, left)).UnixNano()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if serr := g.cache.Set(sctx, f.ck(), appendEntry(make([]byte, 0, entrySize(e)), e), left); serr != nil {
		g.stats.cacheErrors.Add(1)
		g.log.warn(warnCacheSet, "pgflight: cache write failed, value returned uncached", "key", logKey(f.ck()), "err", serr)
	}
	return r.v, true
}
