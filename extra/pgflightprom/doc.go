// Package pgflightprom exports what pgflight Groups do as Prometheus
// metrics, on github.com/prometheus/client_golang. It is a module of its
// own, so that importing pgflight never brings client_golang into a
// program that does not use it.
//
// # Usage
//
// A [Metrics] is one [prometheus.Collector] for any number of Groups. Its
// [Metrics.Observer] goes in each Group's Config, before the Group exists;
// [Metrics.Watch] adds the Group's counters once [pgflight.New] returned it:
//
//	m := pgflightprom.New()
//	g, err := pgflight.New(pgflight.Config{Namespace: "users", Observer: m.Observer(), ...})
//	...
//	m.Watch("users", g)
//	prometheus.MustRegister(m)
//
// # Metrics
//
// Counters, read from [pgflight.Group.Stats] at each scrape (no goroutine,
// no copy kept), one per Stats field, named for it with its unit:
// pgflight_hits_total, pgflight_misses_total,
// pgflight_lock_wait_seconds_total, and so on; the help text of each is
// the field's documentation. They are labelled by the Group's namespace.
//
// Histograms, recorded by the Observer, labelled by namespace and outcome:
//
//	pgflight_lock_wait_duration_seconds    one call of the Locker; outcome ok, error or timeout
//	pgflight_computation_duration_seconds  one call of fn; outcome ok, missing (fn returned
//	                                       ErrMissing), error or panic
//	pgflight_flight_duration_seconds       one caller's wait for a flight, from its call of Fetch;
//	                                       outcome computed, received, failed-open or none
//	                                       (it left first, or the Group closed), role led or joined
//
// A namespace's histograms have a series for every outcome from its
// first event on, at zero until it happens, so that a rate of failed-open
// flights reads 0, not "no data". A hit is not timed: it is counted in pgflight_hits_total, and the
// Observer's Hit costs nothing. Keys are never labels: their number is
// unbounded.
//
// Names are prefixed pgflight_ whatever the Group's namespace, so that one
// dashboard serves every Group; select a Group with {namespace="users"}.
package pgflightprom
