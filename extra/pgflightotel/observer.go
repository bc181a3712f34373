package pgflightotel

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgflight/pgflight"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/pgflight/pgflight/extra/pgflightotel"

// An Observer is a [pgflight.Observer] that makes spans and records
// metrics with OpenTelemetry. Set it as the Config.Observer of any number
// of Groups. It is safe for concurrent use by multiple goroutines.
type Observer struct {
	pgflight.NopObserver
	tracer trace.Tracer
	keys   bool // the key is a span attribute
	inst   instruments
	byNS   sync.Map // namespace → *measurements
}

var _ pgflight.Observer = (*Observer)(nil)

// An Option configures an [Observer] made by [New].
type Option func(*options)

type options struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	noKeys bool
}

// WithTracerProvider sets the TracerProvider the spans come from.
//
// Default: the global one, otel.GetTracerProvider(), when New is called.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// WithMeterProvider sets the MeterProvider the instruments come from.
//
// Default: the global one, otel.GetMeterProvider(), when New is called.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.mp = mp }
}

// WithoutKeys leaves the pgflight.key attribute out of spans, for keys
// that hold what traces must not (an e-mail address).
func WithoutKeys() Option {
	return func(o *options) { o.noKeys = true }
}

// New returns an Observer configured by opts. It fails only if the
// MeterProvider refuses an instrument.
func New(opts ...Option) (*Observer, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.tp == nil {
		o.tp = otel.GetTracerProvider()
	}
	if o.mp == nil {
		o.mp = otel.GetMeterProvider()
	}
	inst, err := newInstruments(o.mp.Meter(ScopeName))
	if err != nil {
		return nil, fmt.Errorf("pgflightotel: %w", err)
	}
	return &Observer{tracer: o.tp.Tracer(ScopeName), keys: !o.noKeys, inst: inst}, nil
}

// measurements returns namespace's attribute sets, made at its first
// event.
func (o *Observer) measurements(namespace string) *measurements {
	if m, ok := o.byNS.Load(namespace); ok {
		return m.(*measurements)
	}
	m, _ := o.byNS.LoadOrStore(namespace, newMeasurements(namespace))
	return m.(*measurements)
}

// Hit counts the hit.
func (o *Observer) Hit(ctx context.Context, d pgflight.HitData) {
	o.inst.hits.Add(ctx, 1, o.measurements(d.Namespace).hit[b2i(d.Stale)][b2i(d.Negative)].add...)
}

// FlightStart starts the fetch span and returns ctx with it.
func (o *Observer) FlightStart(ctx context.Context, d pgflight.FlightStartData) context.Context {
	ctx, _ = o.tracer.Start(ctx, spanName,
		trace.WithTimestamp(d.Start),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(o.startAttrs(d)...))
	return ctx
}

// FlightEnd ends the fetch span and measures the caller's wait.
func (o *Observer) FlightEnd(ctx context.Context, d pgflight.FlightEndData) {
	o.endSpan(trace.SpanFromContext(ctx), d)
	m := o.measurements(d.Namespace)
	out := d.Outcome
	if out < 0 || int(out) >= len(flightOutcomes) {
		out = pgflight.OutcomeNone // an outcome newer than this package
	}
	a := m.flight[out][b2i(d.Led)]
	o.inst.flights.Add(ctx, 1, a.add...)
	o.inst.flightDuration.Record(ctx, d.Duration.Seconds(), a.rec...)
}

// LockWait measures the Locker's call and adds it to the span in ctx.
func (o *Observer) LockWait(ctx context.Context, d pgflight.LockWaitData) {
	out := lockOK
	switch {
	case d.TimedOut:
		out = lockTimeout
	case d.Err != nil:
		out = lockError
	}
	o.inst.lockWait.Record(ctx, d.Duration.Seconds(), o.measurements(d.Namespace).lockWait[out].rec...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("pgflight.lock_wait", trace.WithAttributes(lockWaitAttrs(d, out)...))
	}
}

// FailOpen counts the keys and adds the event to the span in ctx.
func (o *Observer) FailOpen(ctx context.Context, d pgflight.FailOpenData) {
	o.inst.failOpens.Add(ctx, int64(max(d.Keys, 1)), o.measurements(d.Namespace).ns.add...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("pgflight.fail_open", trace.WithAttributes(failOpenAttrs(d)...))
	}
}

// Compute measures fn's call and adds it to the span in ctx.
func (o *Observer) Compute(ctx context.Context, d pgflight.ComputeData) {
	out := computeOutcome(d.Err)
	o.inst.compute.Record(ctx, d.Duration.Seconds(), o.measurements(d.Namespace).compute[out].rec...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("pgflight.compute", trace.WithAttributes(computeAttrs(d, out)...))
	}
}

// Store adds the write to the span in ctx.
func (o *Observer) Store(ctx context.Context, d pgflight.StoreData) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("pgflight.store", trace.WithAttributes(storeAttrs(d)...))
	}
}

// Refresh adds the refresh, started or skipped, to the span in ctx.
func (o *Observer) Refresh(ctx context.Context, d pgflight.RefreshData) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("pgflight.refresh", trace.WithAttributes(refreshAttrs(d)...))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
