package pgflightprom

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgflight/pgflight"
)

// observer records the histograms. When the options are invalid, vecs is
// nil, it records nothing, and describe sends the error for Register to
// return: a bad bucket list must not panic in Fetch.
type observer struct {
	pgflight.NopObserver
	err                       error
	lockWait, compute, flight *prometheus.HistogramVec
	byNS                      sync.Map // namespace → *series
}

// series holds a namespace's histograms, by outcome, found once rather
// than by label values at each event.
type series struct {
	lockWait [3]prometheus.Observer    // lockOutcomes
	compute  [4]prometheus.Observer    // computeOutcomes
	flight   [4][2]prometheus.Observer // pgflight.Outcome, led
}

var (
	lockOutcomes    = [...]string{"ok", "error", "timeout"}
	computeOutcomes = [...]string{"ok", "missing", "error", "panic"}
	flightOutcomes  = [...]pgflight.Outcome{pgflight.OutcomeNone, pgflight.OutcomeComputed, pgflight.OutcomeReceived, pgflight.OutcomeFailedOpen}
)

// series returns namespace's series, made at its first event.
func (o *observer) series(namespace string) *series {
	if s, ok := o.byNS.Load(namespace); ok {
		return s.(*series)
	}
	s := new(series)
	for i, out := range lockOutcomes {
		s.lockWait[i] = o.lockWait.WithLabelValues(namespace, out)
	}
	for i, out := range computeOutcomes {
		s.compute[i] = o.compute.WithLabelValues(namespace, out)
	}
	for _, out := range flightOutcomes {
		s.flight[out][0] = o.flight.WithLabelValues(namespace, out.String(), "joined")
		s.flight[out][1] = o.flight.WithLabelValues(namespace, out.String(), "led")
	}
	actual, _ := o.byNS.LoadOrStore(namespace, s)
	return actual.(*series)
}

var _ pgflight.Observer = (*observer)(nil)

func newObserver(o options) *observer {
	buckets := o.buckets
	if buckets == nil {
		buckets = prometheus.DefBuckets
	}
	if err := checkOptions(buckets, o.constLabels); err != nil {
		return &observer{err: err}
	}
	hist := func(name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        name,
			Help:        help,
			Buckets:     slices.Clone(buckets),
			ConstLabels: o.constLabels,
		}, append([]string{"namespace"}, labels...))
	}
	return &observer{
		lockWait: hist("pgflight_lock_wait_duration_seconds",
			"Time one call of the Locker took: taking, following or awaiting a lock; outcome ok, error or timeout.", "outcome"),
		compute: hist("pgflight_computation_duration_seconds",
			"Time one call of fn took, with the encoding of its values; outcome ok, missing, error or panic.", "outcome"),
		flight: hist("pgflight_flight_duration_seconds",
			"Time a Fetch that found no usable entry (led) or joined a flight (joined) waited; outcome computed, received, failed-open or none.", "outcome", "role"),
	}
}

// checkOptions refuses what would make client_golang panic at the first
// observation.
func checkOptions(b []float64, constLabels prometheus.Labels) error {
	if len(b) == 0 {
		return errors.New("pgflightprom: WithBuckets: no bucket")
	}
	for i := 1; i < len(b); i++ {
		if !(b[i-1] < b[i]) {
			return fmt.Errorf("pgflightprom: WithBuckets: bucket %d (%g) not above bucket %d (%g)", i, b[i], i-1, b[i-1])
		}
	}
	for name, value := range constLabels {
		switch {
		case name == "namespace" || name == "outcome" || name == "role":
			return fmt.Errorf("pgflightprom: WithConstLabels: label %q is taken", name)
		case name == "" || strings.HasPrefix(name, "__") || !utf8.ValidString(name):
			return fmt.Errorf("pgflightprom: WithConstLabels: invalid label name %q", name)
		case !utf8.ValidString(value):
			return fmt.Errorf("pgflightprom: WithConstLabels: label %q: value not UTF-8", name)
		}
	}
	return nil
}

func (o *observer) describe(ch chan<- *prometheus.Desc) {
	if o.err != nil {
		ch <- prometheus.NewInvalidDesc(o.err)
		return
	}
	o.lockWait.Describe(ch)
	o.compute.Describe(ch)
	o.flight.Describe(ch)
}

func (o *observer) collect(ch chan<- prometheus.Metric) {
	if o.err != nil {
		return
	}
	o.lockWait.Collect(ch)
	o.compute.Collect(ch)
	o.flight.Collect(ch)
}

// LockWait records the call's time by outcome.
func (o *observer) LockWait(_ context.Context, d pgflight.LockWaitData) {
	if o.err != nil {
		return
	}
	outcome := 0 // ok
	switch {
	case d.TimedOut:
		outcome = 2
	case d.Err != nil:
		outcome = 1
	}
	o.series(d.Namespace).lockWait[outcome].Observe(d.Duration.Seconds())
}

// Compute records fn's time by outcome.
func (o *observer) Compute(_ context.Context, d pgflight.ComputeData) {
	if o.err != nil {
		return
	}
	o.series(d.Namespace).compute[computeOutcome(d.Err)].Observe(d.Duration.Seconds())
}

// computeOutcome classifies fn's result, as an index in computeOutcomes:
// a key found missing is an answer, not a failure.
func computeOutcome(err error) int {
	var pe *pgflight.PanicError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &pe), errors.Is(err, pgflight.ErrGoexit):
		return 3
	case errors.Is(err, pgflight.ErrMissing):
		return 1
	}
	return 2
}

// FlightEnd records the caller's wait by outcome and role.
func (o *observer) FlightEnd(_ context.Context, d pgflight.FlightEndData) {
	if o.err != nil {
		return
	}
	out := d.Outcome
	if out < 0 || int(out) >= len(flightOutcomes) {
		out = pgflight.OutcomeNone // an outcome newer than this package
	}
	led := 0
	if d.Led {
		led = 1
	}
	o.series(d.Namespace).flight[out][led].Observe(d.Duration.Seconds())
}
