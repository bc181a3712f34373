package pgflightotel_test

import (
	"context"
	"fmt"
	"log"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/extra/pgflightotel"
)

// The Observer goes in the Config. Here its providers export to memory;
// a program gives its own, or sets the global ones and calls New().
func Example() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	obs, err := pgflightotel.New(pgflightotel.WithTracerProvider(tp), pgflightotel.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	g, err := pgflight.New(pgflight.Config{Namespace: "users", Observer: obs})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	ctx := context.Background()
	for range 3 {
		if _, err := pgflight.Fetch(ctx, g, "user:42", func(context.Context) (string, error) {
			return "Ada", nil // the query pgflight saves
		}); err != nil {
			log.Fatal(err)
		}
	}

	// One span, for the miss; the hits are counted.
	for _, s := range spans.GetSpans() {
		fmt.Println(s.Name)
		for _, kv := range s.Attributes {
			fmt.Printf("  %s=%s\n", kv.Key, kv.Value.Emit())
		}
		for _, e := range s.Events {
			fmt.Println("  event", e.Name)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "pgflight.hits" {
				fmt.Println("hits:", m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
			}
		}
	}
	// Output:
	// pgflight.fetch
	//   pgflight.namespace=users
	//   pgflight.led=true
	//   pgflight.key=user:42
	//   pgflight.outcome=computed
	//   event pgflight.lock_wait
	//   event pgflight.compute
	//   event pgflight.store
	// hits: 2
}
