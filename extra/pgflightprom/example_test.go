package pgflightprom_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/extra/pgflightprom"
)

// The Observer goes in the Config, the Group into Watch once New returned
// it, and the Metrics into a registry served as usual:
// http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).
func Example() {
	m := pgflightprom.New()
	g, err := pgflight.New(pgflight.Config{Namespace: "users", Observer: m.Observer()})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	if err := m.Watch("users", g); err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)

	for range 3 {
		name, err := pgflight.Fetch(context.Background(), g, "user:42", func(context.Context) (string, error) {
			return "Ada", nil // the query pgflight saves
		})
		if err != nil {
			log.Fatal(err)
		}
		_ = name
	}

	// What a scrape shows: one miss, computed, then two hits; the miss's
	// caller waited for its flight once.
	out, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "pgflight_hits_total", "pgflight_misses_total")
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(out)
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pgflight_flight_duration_seconds" {
			for _, s := range mf.GetMetric() {
				if s.GetHistogram().GetSampleCount() == 0 {
					continue // every outcome has its series from the first event on
				}
				fmt.Print(mf.GetName(), " ")
				for _, l := range s.GetLabel() {
					fmt.Printf("%s=%s ", l.GetName(), l.GetValue())
				}
				fmt.Println("count", s.GetHistogram().GetSampleCount())
			}
		}
	}
	// Output:
	// # HELP pgflight_hits_total Keys answered from the cache without waiting for a lock.
	// # TYPE pgflight_hits_total counter
	// pgflight_hits_total{namespace="users"} 2
	// # HELP pgflight_misses_total Flights (keys) that found no fresh entry and went for the lock.
	// # TYPE pgflight_misses_total counter
	// pgflight_misses_total{namespace="users"} 1
	// pgflight_flight_duration_seconds namespace=users outcome=computed role=led count 1
}
