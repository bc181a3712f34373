package pgflightotel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/extra/pgflightotel"
)

// telemetry is an Observer on real SDK providers, with what they export.
type telemetry struct {
	obs    *pgflightotel.Observer
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	tracer trace.Tracer // for the test's own spans
}

func newTelemetry(t *testing.T, opts ...pgflightotel.Option) *telemetry {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	obs, err := pgflightotel.New(append([]pgflightotel.Option{
		pgflightotel.WithTracerProvider(tp), pgflightotel.WithMeterProvider(mp),
	}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &telemetry{obs: obs, spans: spans, reader: reader, tracer: tp.Tracer("test")}
}

// newGroup returns a Group closed at cleanup.
func newGroup(tb testing.TB, cfg pgflight.Config) *pgflight.Group {
	tb.Helper()
	g, err := pgflight.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

var discard = slog.New(slog.DiscardHandler)

// brokenLocker fails every Lock: every flight fails open.
var brokenLocker = pgflight.LockerFunc(func(context.Context, int64) (func(context.Context) error, error) {
	return nil, errors.New("lock server down")
})

func one(context.Context) (int, error) { return 1, nil }

// ended returns the spans ended so far named name.
func (tm *telemetry) ended(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tm.spans.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attrs(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func eventNames(s tracetest.SpanStub) string {
	var names []string
	for _, e := range s.Events {
		names = append(names, e.Name)
	}
	return strings.Join(names, " ")
}

// wantAttr checks that kvs hold key with the value whose Emit is want.
func wantAttr(tb testing.TB, what string, kvs []attribute.KeyValue, key, want string) {
	tb.Helper()
	v, ok := attrs(kvs)[attribute.Key(key)]
	switch {
	case !ok:
		tb.Errorf("%s: no attribute %s", what, key)
	case v.Emit() != want:
		tb.Errorf("%s: %s = %s, want %s", what, key, v.Emit(), want)
	}
}

// A miss is a span, child of the caller's, parent of fn's; hits are not.
func TestSpanMiss(t *testing.T) {
	tm := newTelemetry(t)
	g := newGroup(t, pgflight.Config{Namespace: "users", Observer: tm.obs})
	ctx, parent := tm.tracer.Start(t.Context(), "handler")
	for range 3 {
		if _, err := pgflight.Fetch(ctx, g, "user:42", func(ctx context.Context) (int, error) {
			_, span := tm.tracer.Start(ctx, "query")
			span.End()
			return 42, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	parent.End()

	fetches, queries := tm.ended("pgflight.fetch"), tm.ended("query")
	if len(fetches) != 1 || len(queries) != 1 {
		t.Fatalf("%d fetch spans and %d query spans, want 1 of each (hits are no spans)", len(fetches), len(queries))
	}
	f := fetches[0]
	if f.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("the fetch span's parent is %v, want the caller's span %v", f.Parent.SpanID(), parent.SpanContext().SpanID())
	}
	if queries[0].Parent.SpanID() != f.SpanContext.SpanID() {
		t.Errorf("fn's span's parent is %v, want the fetch span %v", queries[0].Parent.SpanID(), f.SpanContext.SpanID())
	}
	if f.SpanKind != trace.SpanKindInternal {
		t.Errorf("span kind %v, want internal", f.SpanKind)
	}
	wantAttr(t, "fetch", f.Attributes, "pgflight.namespace", "users")
	wantAttr(t, "fetch", f.Attributes, "pgflight.key", "user:42")
	wantAttr(t, "fetch", f.Attributes, "pgflight.led", "true")
	wantAttr(t, "fetch", f.Attributes, "pgflight.outcome", "computed")
	if f.Status.Code != codes.Unset {
		t.Errorf("status %v, want unset", f.Status)
	}
	if got, want := eventNames(f), "pgflight.lock_wait pgflight.compute pgflight.store"; got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	wantAttr(t, "lock_wait", f.Events[0].Attributes, "pgflight.outcome", "ok")
	wantAttr(t, "compute", f.Events[1].Attributes, "pgflight.outcome", "ok")
	if !f.StartTime.Before(queries[0].StartTime) || f.EndTime.Before(queries[0].EndTime) {
		t.Errorf("fetch span [%v, %v] does not contain fn's [%v, %v]", f.StartTime, f.EndTime, queries[0].StartTime, queries[0].EndTime)
	}
}

// fn's error is the span's; a key found missing is not an error.
func TestSpanErrors(t *testing.T) {
	tm := newTelemetry(t)
	g := newGroup(t, pgflight.Config{Observer: tm.obs, Logger: discard})
	fnErr := errors.New("database down")
	if _, err := pgflight.Fetch(t.Context(), g, "bad", func(context.Context) (int, error) { return 0, fnErr }); !errors.Is(err, fnErr) {
		t.Fatalf("error %v, want %v", err, fnErr)
	}
	if _, err := pgflight.Fetch(t.Context(), g, "gone", func(context.Context) (int, error) {
		return 0, fmt.Errorf("no such user: %w", pgflight.ErrMissing)
	}); !errors.Is(err, pgflight.ErrMissing) {
		t.Fatalf("error %v, want ErrMissing", err)
	}
	if _, err := pgflight.Fetch(t.Context(), g, "boom", func(context.Context) (int, error) { panic("boom") }); err == nil {
		t.Fatal("a panic gave no error")
	}
	long := strings.Repeat("é", 100) // 200 bytes
	if _, err := pgflight.Fetch(t.Context(), g, long, one); err != nil {
		t.Fatal(err)
	}

	spans := tm.ended("pgflight.fetch")
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	bad, gone, boom, lng := spans[0], spans[1], spans[2], spans[3]
	if bad.Status.Code != codes.Error || !strings.Contains(bad.Status.Description, "database down") {
		t.Errorf("fn error: status %v, want an error with fn's message", bad.Status)
	}
	if got, want := eventNames(bad), "pgflight.lock_wait pgflight.compute exception"; got != want {
		t.Errorf("fn error: events %q, want %q", got, want)
	}
	wantAttr(t, "fn error compute", bad.Events[1].Attributes, "pgflight.outcome", "error")
	if gone.Status.Code != codes.Unset {
		t.Errorf("missing: status %v, want unset", gone.Status)
	}
	wantAttr(t, "missing compute", gone.Events[1].Attributes, "pgflight.outcome", "missing")
	if boom.Status.Code != codes.Error || strings.Contains(boom.Status.Description, "\n") {
		t.Errorf("panic: status %q, want an error of one line (the stack is in the exception event)", boom.Status)
	}
	wantAttr(t, "panic compute", boom.Events[1].Attributes, "pgflight.outcome", "panic")
	key := attrs(lng.Attributes)["pgflight.key"].AsString()
	if len(key) != 128 || !strings.HasPrefix(long, key) {
		t.Errorf("long key attribute of %d bytes, want its first 128", len(key))
	}
}

// joinObserver signals when a caller joins a flight.
type joinObserver struct {
	*pgflightotel.Observer
	joining chan struct{}
}

func (o joinObserver) FlightStart(ctx context.Context, d pgflight.FlightStartData) context.Context {
	ctx = o.Observer.FlightStart(ctx, d)
	if !d.Led {
		close(o.joining)
	}
	return ctx
}

// A caller that joins a flight gets a span of its own; failing open is
// an event and an outcome.
func TestSpanJoinAndFailOpen(t *testing.T) {
	tm := newTelemetry(t)
	obs := joinObserver{tm.obs, make(chan struct{})}
	g := newGroup(t, pgflight.Config{Observer: obs, Locker: brokenLocker, Logger: discard})
	started, release := make(chan struct{}), make(chan struct{})
	led := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(context.Background(), g, "k", func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil
		})
		led <- err
	}()
	<-started
	joined := make(chan error, 1)
	go func() {
		_, err := pgflight.Fetch(context.Background(), g, "k", one)
		joined <- err
	}()
	select {
	case <-obs.joining:
	case err := <-joined:
		t.Fatalf("the second caller returned (%v) without joining the flight", err)
	}
	close(release)
	for _, ch := range []chan error{led, joined} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}

	spans := tm.ended("pgflight.fetch")
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	byLed := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byLed[attrs(s.Attributes)["pgflight.led"].Emit()] = s
		wantAttr(t, "span", s.Attributes, "pgflight.outcome", "failed-open")
	}
	if got, want := eventNames(byLed["true"]), "pgflight.lock_wait pgflight.fail_open pgflight.compute pgflight.store"; got != want {
		t.Errorf("leader's events %q, want %q", got, want)
	}
	if got := eventNames(byLed["false"]); got != "" {
		t.Errorf("joiner's events %q, want none (the leader's flight did the work)", got)
	}
	wantAttr(t, "lock_wait", byLed["true"].Events[0].Attributes, "pgflight.outcome", "error")
	wantAttr(t, "fail_open", byLed["true"].Events[1].Attributes, "pgflight.error", "lock server down")
}

// A FetchMany batch has no span of its own: its steps are events of the
// caller's.
func TestFetchManyEvents(t *testing.T) {
	tm := newTelemetry(t)
	g := newGroup(t, pgflight.Config{Observer: tm.obs})
	ctx, parent := tm.tracer.Start(t.Context(), "handler")
	if _, err := pgflight.FetchMany(ctx, g, []string{"a", "b"}, func(_ context.Context, keys []string) (map[string]int, error) {
		return map[string]int{"a": 1, "b": 2}, nil
	}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	h := tm.ended("handler")
	if len(h) != 1 {
		t.Fatalf("%d handler spans, want 1", len(h))
	}
	if got, want := eventNames(h[0]), "pgflight.lock_wait pgflight.compute pgflight.store"; got != want {
		t.Errorf("caller's events %q, want %q", got, want)
	}
	wantAttr(t, "compute", h[0].Events[1].Attributes, "pgflight.keys", "2")
}

func TestWithoutKeys(t *testing.T) {
	tm := newTelemetry(t, pgflightotel.WithoutKeys())
	g := newGroup(t, pgflight.Config{Observer: tm.obs})
	if _, err := pgflight.Fetch(t.Context(), g, "alice@example.com", one); err != nil {
		t.Fatal(err)
	}
	for _, s := range tm.ended("pgflight.fetch") {
		if v, ok := attrs(s.Attributes)["pgflight.key"]; ok {
			t.Errorf("span has pgflight.key %s", v.Emit())
		}
	}
}
