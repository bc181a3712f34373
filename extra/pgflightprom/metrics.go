package pgflightprom

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgflight/pgflight"
)

// Metrics is a [prometheus.Collector] of pgflight metrics: the counters of
// the Groups it watches and the histograms its Observer records. Register
// it once, with any number of Groups. It is safe for concurrent use by
// multiple goroutines.
type Metrics struct {
	stats []statMetric
	obs   *observer

	mu     sync.Mutex
	groups map[string]interface{ Stats() pgflight.Stats } // by namespace
}

// An Option configures a [Metrics] made by [New].
type Option func(*options)

type options struct {
	buckets     []float64
	constLabels prometheus.Labels
}

// WithBuckets sets the upper bounds, in seconds, of the histograms'
// buckets.
//
// Default: [prometheus.DefBuckets], 5 milliseconds to 10 seconds.
func WithBuckets(buckets []float64) Option {
	return func(o *options) { o.buckets = buckets }
}

// WithConstLabels adds labels with fixed values to every metric, such as
// the service's name. The label names namespace, outcome and role are
// taken: registering m fails.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(o *options) { o.constLabels = labels }
}

// New returns a Metrics that watches no Group yet. Give its
// [Metrics.Observer] to a Group's Config, [Metrics.Watch] the Group, and
// register the Metrics with a [prometheus.Registerer]; registering checks
// the options (a bad bucket list or label name is an error there).
func New(opts ...Option) *Metrics {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return &Metrics{
		stats:  newStatMetrics(o.constLabels),
		obs:    newObserver(o),
		groups: make(map[string]interface{ Stats() pgflight.Stats }),
	}
}

// Observer returns the [pgflight.Observer] that records m's histograms.
// Set it as the Config.Observer of every Group m watches; one Observer
// serves all of them, telling them apart by namespace.
func (m *Metrics) Observer() pgflight.Observer { return m.obs }

// Watch adds g's counters ([pgflight.Group.Stats]) to m, labelled
// namespace, which must be g's Config.Namespace ("pgflight" when the
// Config left it empty): the Group does not tell its namespace. g is
// usually a *pgflight.Group. Watch fails if m already watches a Group
// under namespace: two would report the same series.
//
// A Group closed stays watched, its counters frozen; [Metrics.Unwatch] it
// before watching its replacement.
func (m *Metrics) Watch(namespace string, g interface{ Stats() pgflight.Stats }) error {
	if pg, ok := g.(*pgflight.Group); ok && pg == nil {
		g = nil
	}
	switch {
	case g == nil:
		return errors.New("pgflightprom: watch: nil group")
	case namespace == "" || !utf8.ValidString(namespace):
		return fmt.Errorf("pgflightprom: watch: invalid namespace %q", namespace)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.groups[namespace]; ok {
		return fmt.Errorf("pgflightprom: watch: namespace %q already watched", namespace)
	}
	m.groups[namespace] = g
	return nil
}

// Unwatch removes the Group watched under namespace, if any: its counters
// are no longer collected. The histograms keep their series.
func (m *Metrics) Unwatch(namespace string) {
	m.mu.Lock()
	delete(m.groups, namespace)
	m.mu.Unlock()
}

// Describe sends the descriptors of every metric m can collect. It
// implements [prometheus.Collector].
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range m.stats {
		ch <- s.desc
	}
	m.obs.describe(ch)
}

// Collect reads the Stats of every Group m watches and sends them with
// the histograms. It implements [prometheus.Collector].
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	stats := make(map[string]pgflight.Stats, len(m.groups))
	for ns, g := range m.groups {
		stats[ns] = g.Stats()
	}
	m.mu.Unlock()
	for ns, st := range stats {
		for _, s := range m.stats {
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, s.value(st), ns)
		}
	}
	m.obs.collect(ch)
}
