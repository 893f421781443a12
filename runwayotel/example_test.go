package runwayotel_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwayotel"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// Wire the instrumentation into a client and read the submission counter back. In a service,
// the MeterProvider is the one your exporter (Prometheus, OTLP) reads; New() alone uses the
// global providers.
func ExampleNew() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	otelRunway, err := runwayotel.New(runwayotel.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}

	srv := runwaytest.NewServer() // a fake Kie API on loopback
	defer srv.Close()
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), otelRunway.ClientOption())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, err = c.Generate(context.Background(), runway.GenerateRequest{
		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
	})
	if err != nil {
		panic(err)
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "runway.submissions" {
			dp := m.Data.(metricdata.Sum[int64]).DataPoints[0]
			outcome, _ := dp.Attributes.Value(runwayotel.AttrSubmitOutcome)
			fmt.Println(m.Name, m.Unit, outcome.AsString(), dp.Value)
		}
	}
	// Output:
	// runway.submissions {submission} created 1
}
