package pgflightotel

import (
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pgflight/pgflight"
)

// instruments are the Observer's counters and histograms.
type instruments struct {
	hits, flights, failOpens          metric.Int64Counter
	lockWait, compute, flightDuration metric.Float64Histogram
}

// durationBuckets are the histograms' advised boundaries, in seconds:
// the SDK's default ones are for milliseconds.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newInstruments(m metric.Meter) (instruments, error) {
	var in instruments
	var err, e error
	in.hits, e = m.Int64Counter("pgflight.hits", metric.WithUnit("{hit}"),
		metric.WithDescription("Keys answered from the cache without waiting for a lock."))
	err = errors.Join(err, e)
	in.flights, e = m.Int64Counter("pgflight.flights", metric.WithUnit("{flight}"),
		metric.WithDescription("Fetch calls that found no usable entry (role led: the misses) or joined a flight (role joined), by how the flight got its value."))
	err = errors.Join(err, e)
	in.failOpens, e = m.Int64Counter("pgflight.fail_opens", metric.WithUnit("{key}"),
		metric.WithDescription("Keys computed without the cluster lock because the Locker failed: lost deduplication."))
	err = errors.Join(err, e)
	hist := func(name, desc string) metric.Float64Histogram {
		h, e := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		err = errors.Join(err, e)
		return h
	}
	in.lockWait = hist("pgflight.lock.wait.duration", "Time one call of the Locker took: taking, following or awaiting a lock.")
	in.compute = hist("pgflight.compute.duration", "Time one call of fn took, with the encoding of its values.")
	in.flightDuration = hist("pgflight.flight.duration", "Time a Fetch that found no usable entry, or joined a flight, waited for it.")
	return in, err
}

// Attribute keys.
const (
	keyNamespace = attribute.Key("pgflight.namespace")
	keyKey       = attribute.Key("pgflight.key")
	keyKeys      = attribute.Key("pgflight.keys")
	keyLed       = attribute.Key("pgflight.led")
	keyRole      = attribute.Key("pgflight.role")
	keyOutcome   = attribute.Key("pgflight.outcome")
	keyStale     = attribute.Key("pgflight.stale")
	keyNegative  = attribute.Key("pgflight.negative")
	keyDuration  = attribute.Key("pgflight.duration")
	keyTimedOut  = attribute.Key("pgflight.timed_out")
	keyError     = attribute.Key("pgflight.error")
	keyBytes     = attribute.Key("pgflight.bytes")
	keyEarly     = attribute.Key("pgflight.early")
	keyStarted   = attribute.Key("pgflight.started")
	keySkipped   = attribute.Key("pgflight.skipped")
)

// Outcomes of a lock wait and of a computation, as indexes.
const (
	lockOK = iota
	lockError
	lockTimeout
)

var lockOutcomes = [...]string{lockOK: "ok", lockError: "error", lockTimeout: "timeout"}

const (
	computeOK = iota
	computeMissing
	computeError
	computePanic
)

var computeOutcomes = [...]string{computeOK: "ok", computeMissing: "missing", computeError: "error", computePanic: "panic"}

var flightOutcomes = [...]pgflight.Outcome{pgflight.OutcomeNone, pgflight.OutcomeComputed, pgflight.OutcomeReceived, pgflight.OutcomeFailedOpen}

// computeOutcome classifies fn's result: a key found missing is an
// answer, not a failure.
func computeOutcome(err error) int {
	var pe *pgflight.PanicError
	switch {
	case err == nil:
		return computeOK
	case errors.As(err, &pe), errors.Is(err, pgflight.ErrGoexit):
		return computePanic
	case errors.Is(err, pgflight.ErrMissing):
		return computeMissing
	}
	return computeError
}

// measurements are one namespace's attribute sets, made once: building a
// set at each event would cost more than recording it.
type measurements struct {
	ns       attrs
	hit      [2][2]attrs // stale, negative
	flight   [4][2]attrs // Outcome, led
	lockWait [len(lockOutcomes)]attrs
	compute  [len(computeOutcomes)]attrs
}

// attrs is one attribute set as the option lists Add and Record take,
// made once so that passing them allocates nothing.
type attrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newMeasurements(namespace string) *measurements {
	ns := keyNamespace.String(namespace)
	set := func(kvs ...attribute.KeyValue) attrs {
		opt := metric.WithAttributeSet(attribute.NewSet(append(kvs, ns)...))
		return attrs{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}}
	}
	m := &measurements{ns: set()}
	for stale := range 2 {
		for negative := range 2 {
			m.hit[stale][negative] = set(keyStale.Bool(stale == 1), keyNegative.Bool(negative == 1))
		}
	}
	for _, out := range flightOutcomes {
		m.flight[out][0] = set(keyOutcome.String(out.String()), keyRole.String("joined"))
		m.flight[out][1] = set(keyOutcome.String(out.String()), keyRole.String("led"))
	}
	for i, out := range lockOutcomes {
		m.lockWait[i] = set(keyOutcome.String(out))
	}
	for i, out := range computeOutcomes {
		m.compute[i] = set(keyOutcome.String(out))
	}
	return m
}
