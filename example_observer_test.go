package runway_test

import (
	"context"
	"fmt"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// An observer sees the SDK's own events; set only the funcs you need. The runwayotel module
// provides one that feeds OpenTelemetry.
func ExampleWithObserver() {
	srv := runwaytest.NewServer()
	defer srv.Close()
	obs := runway.Observer{
		OnSubmit: func(e runway.SubmitEvent) { fmt.Println("submit:", e.Op, e.Outcome) },
		OnWaitEnd: func(e runway.WaitEndEvent) {
			fmt.Println("wait:", e.Outcome, "from", e.Source, "after", e.Polls, "poll(s)")
		},
	}
	c, _ := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithObserver(obs))
	defer c.Close()
	ctx := context.Background()

	_, _ = c.Generate(ctx, runway.GenerateRequest{Prompt: "", Duration: 5}) // refused locally
	id, _ := c.Generate(ctx, runway.GenerateRequest{
		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
	})
	_, _ = srv.WaitTerminal(ctx, id)
	_, _ = c.WaitForResult(ctx, id)
	// Output:
	// submit: generate refused
	// submit: generate created
	// wait: success from poll after 1 poll(s)
}
