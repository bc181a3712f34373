package pgflight

import (
	"context"
	"time"
)

// An Observer is told what a Group does, one method per event, for
// metrics, traces and logs. Set it in Config.Observer; the modules
// github.com/pgflight/pgflight/extra/pgflightprom and
// github.com/pgflight/pgflight/extra/pgflightotel implement it.
//
// The Group calls an Observer's methods synchronously, from the goroutine
// where the event happens, and from many goroutines at once: they must be
// safe for concurrent use and fast, and must not call the Group. Every
// method gets a data struct, so adding a field never breaks an
// implementation; embed [NopObserver] so that adding an event does not
// either. When Config.Observer is nil, observing costs nothing.
//
// Keys in events are the caller's keys, whole; an implementation that
// exports them (a span attribute, a log line) should bound their length
// and never use them as metric labels.
type Observer interface {
	// Hit reports a Fetch served from the cache, without waiting.
	Hit(ctx context.Context, d HitData)

	// FlightStart reports a Fetch that found no usable entry (it leads a
	// flight) or that joins this process's flight of its key. The
	// context it returns is passed to FlightEnd and, for the caller that
	// leads, to the flight's other events and to fn, so a span started
	// here is their parent.
	FlightStart(ctx context.Context, d FlightStartData) context.Context

	// FlightEnd reports the end of a caller's wait started by FlightStart.
	FlightEnd(ctx context.Context, d FlightEndData)

	// LockWait reports one call of the Locker: taking, following or
	// awaiting one key's lock or a batch's.
	LockWait(ctx context.Context, d LockWaitData)

	// FailOpen reports keys computed without the lock because the Locker
	// failed, LockWait ran out, or other holders kept failing.
	FailOpen(ctx context.Context, d FailOpenData)

	// Compute reports one call of fn (one key for Fetch and refreshes, a
	// batch for FetchMany).
	Compute(ctx context.Context, d ComputeData)

	// Store reports one write of computed entries to the Cache.
	Store(ctx context.Context, d StoreData)

	// Refresh reports a background refresh started or skipped.
	Refresh(ctx context.Context, d RefreshData)

	// Invalidation reports a broadcast telling local tiers to drop copies,
	// sent by this Group or received from another process's.
	Invalidation(ctx context.Context, d InvalidationData)
}

// NopObserver is an [Observer] that does nothing. Embed it in an Observer
// of your own to implement only the events you need.
type NopObserver struct{}

// Hit does nothing.
func (NopObserver) Hit(context.Context, HitData) {}

// FlightStart returns ctx.
func (NopObserver) FlightStart(ctx context.Context, _ FlightStartData) context.Context { return ctx }

// FlightEnd does nothing.
func (NopObserver) FlightEnd(context.Context, FlightEndData) {}

// LockWait does nothing.
func (NopObserver) LockWait(context.Context, LockWaitData) {}

// FailOpen does nothing.
func (NopObserver) FailOpen(context.Context, FailOpenData) {}

// Compute does nothing.
func (NopObserver) Compute(context.Context, ComputeData) {}

// Store does nothing.
func (NopObserver) Store(context.Context, StoreData) {}

// Refresh does nothing.
func (NopObserver) Refresh(context.Context, RefreshData) {}

// Invalidation does nothing.
func (NopObserver) Invalidation(context.Context, InvalidationData) {}

// HitData describes a hit.
type HitData struct {
	Namespace, Key string
	// Stale says the entry was past its fresh time, within its stale
	// window: a background refresh may follow (see RefreshData).
	Stale bool
	// Negative says the entry records a missing key: Fetch returns an
	// error wrapping ErrMissing.
	Negative bool
	// Local says the local tier (Config.Local) served it, without a round
	// trip.
	Local bool
}

// FlightStartData describes a caller that starts waiting for a flight.
type FlightStartData struct {
	Namespace, Key string
	// Start is when the caller called Fetch.
	Start time.Time
	// Led says this caller's miss started the flight; otherwise it joined
	// a flight of this process already running.
	Led bool
}

// FlightEndData describes how a caller's wait for a flight ended.
type FlightEndData struct {
	Namespace, Key string
	Led            bool
	// Outcome says how the flight got its result; it is OutcomeNone for a
	// caller that left first (Err then is its ctx's error) or when the
	// Group was closed.
	Outcome Outcome
	// Err is what the caller got: nil, an error wrapping ErrMissing, fn's
	// error, ErrClosed, ctx.Err().
	Err error
	// Duration is the caller's wait, from FlightStartData.Start.
	Duration time.Duration
}

// Outcome says how a flight got its value.
type Outcome int

const (
	// OutcomeNone: the flight has no result (yet).
	OutcomeNone Outcome = iota
	// OutcomeComputed: this process computed it, holding the lock.
	OutcomeComputed
	// OutcomeReceived: another process computed it; this one read it
	// from the cache after waiting for the lock.
	OutcomeReceived
	// OutcomeFailedOpen: this process computed it without the lock.
	OutcomeFailedOpen
)

// String returns "none", "computed", "received" or "failed-open".
func (o Outcome) String() string {
	switch o {
	case OutcomeComputed:
		return "computed"
	case OutcomeReceived:
		return "received"
	case OutcomeFailedOpen:
		return "failed-open"
	}
	return "none"
}

// LockWaitData describes one call of the Locker.
type LockWaitData struct {
	Namespace string
	// Key is the key whose lock was taken or awaited; empty for a batch,
	// when Keys counts the lock ids.
	Key  string
	Keys int
	// Duration is the time the call took.
	Duration time.Duration
	// Err is the Locker's error, nil when the call succeeded.
	Err error
	// TimedOut says Config.LockWait cut the wait short.
	TimedOut bool
}

// FailOpenData describes keys computed without the lock.
type FailOpenData struct {
	Namespace string
	// Key is the key, or empty for a batch of Keys keys.
	Key  string
	Keys int
	// Err says why: the Locker's error, a lock wait cut by
	// Config.LockWait, or other holders that kept failing.
	Err error
}

// ComputeData describes one call of fn.
type ComputeData struct {
	Namespace string
	// Key is the key, or empty for a batch of Keys keys.
	Key  string
	Keys int
	// Duration is fn's time, with the encoding of its values.
	Duration time.Duration
	// Err is fn's error (a *PanicError for a panic), or an *EncodeError.
	Err error
}

// StoreData describes one write of computed entries.
type StoreData struct {
	Namespace string
	// Key is the key, or empty for a batch of Keys keys.
	Key  string
	Keys int
	// Bytes is the size of what was written, envelopes included.
	Bytes int
	// Err is the Cache's error; the values were returned all the same.
	Err error
}

// RefreshData describes a background refresh started or skipped.
type RefreshData struct {
	Namespace, Key string
	// Early says the refresh was due to Config.EarlyRefresh, not to a
	// stale entry.
	Early bool
	// Started says the refresh calls fn. Otherwise Skipped says why not.
	Started bool
	Skipped RefreshSkip
}

// RefreshSkip says why a background refresh did not run.
type RefreshSkip int

const (
	// SkipNone: the refresh ran.
	SkipNone RefreshSkip = iota
	// SkipBusy: this process already refreshes the key, runs
	// Config.MaxRefreshes refreshes, or refreshed the key recently.
	SkipBusy
	// SkipLocked: another process holds the key's lock.
	SkipLocked
	// SkipReplaced: someone replaced the entry meanwhile.
	SkipReplaced
)

// String returns "none", "busy", "locked" or "replaced".
func (s RefreshSkip) String() string {
	switch s {
	case SkipBusy:
		return "busy"
	case SkipLocked:
		return "locked"
	case SkipReplaced:
		return "replaced"
	}
	return "none"
}

// InvalidationData describes a broadcast that drops local copies (see
// Config.Local).
type InvalidationData struct {
	Namespace string
	// Received says another process sent it; otherwise this Group did.
	Received bool
	// Keys is how many keys it names; All says it drops every copy (a key
	// too long for a message, or a malformed message received).
	Keys int
	All  bool
	// Err is the Broadcaster's error, for one sent.
	Err error
}
