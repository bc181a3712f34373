// Package pgflightotel traces and measures what pgflight Groups do with
// OpenTelemetry. It is a module of its own, so that importing pgflight
// never brings OpenTelemetry into a program that does not use it.
//
// # Usage
//
// An [Observer] goes in a Group's Config; one serves any number of Groups:
//
//	obs, err := pgflightotel.New() // the global TracerProvider and MeterProvider
//	...
//	g, err := pgflight.New(pgflight.Config{Namespace: "users", Observer: obs, ...})
//
// # Traces
//
// A Fetch that computes or waits (a miss, or a caller that joins a flight
// of its key) is a span named "pgflight.fetch", of kind internal, from
// the call of Fetch to its return. Its attributes are pgflight.namespace,
// pgflight.key (cut to 128 bytes; see [WithoutKeys]), pgflight.led (the
// caller started the flight, or joined one) and, at its end,
// pgflight.outcome: computed, received (another process computed it),
// failed-open or none (the caller left first). A span whose Fetch returned
// an error has status Error and an exception event; an error wrapping
// pgflight.ErrMissing is an answer, not an error.
//
// The flight's steps are events of that span: pgflight.lock_wait,
// pgflight.fail_open, pgflight.compute, pgflight.store and
// pgflight.refresh, with their durations and errors as attributes. The
// computation is an event rather than a child span because the Group
// reports it when fn has returned: a span made then could not be the
// parent of the spans fn starts. Those are children of the fetch span,
// since fn's ctx carries it.
//
// A hit is not a span (there are too many); it is counted. Steps with no
// fetch span (a FetchMany batch, a background refresh) are events of the
// span in their ctx, the caller's, if it is still recording.
//
// # Metrics
//
// Instruments of the meter "github.com/pgflight/pgflight/extra/pgflightotel",
// with the attribute pgflight.namespace and never the key (whose number is
// unbounded):
//
//	pgflight.hits                  counter   {hit}     pgflight.stale, pgflight.negative
//	pgflight.flights               counter   {flight}  pgflight.outcome, pgflight.role (led, joined)
//	pgflight.fail_opens            counter   {key}     keys computed without the lock
//	pgflight.lock.wait.duration    histogram s         pgflight.outcome: ok, error, timeout
//	pgflight.compute.duration      histogram s         pgflight.outcome: ok, missing, error, panic
//	pgflight.flight.duration       histogram s         pgflight.outcome, pgflight.role
//
// pgflight.flights with role led counts the misses. For the Group's other
// counters (cache errors, locks lost, refreshes), read
// pgflight.Group.Stats, or use the Prometheus module
// github.com/pgflight/pgflight/extra/pgflightprom.
package pgflightotel
