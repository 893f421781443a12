// Command poll-only submits a generation and waits for it with WaitForResult by polling alone:
// no callback URL, no server to expose. It suits batch jobs and machines Kie cannot reach.
//
// With KIE_API_KEY set it submits one real generation (spending credits) and polls every
// 15 s. Without it, it runs offline against runwaytest, a fake Kie API, in about a second.
//
//	go run ./examples/poll-only -prompt "a paper boat on a river"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

func main() {
	prompt := flag.String("prompt", "A paper boat drifting down a rainy street", "what to generate")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv("KIE_API_KEY"), *prompt); err != nil {
		fmt.Fprintln(os.Stderr, "poll-only:", err)
		os.Exit(1)
	}
}

// run generates one video and polls until it is done; an empty apiKey means offline.
func run(ctx context.Context, w io.Writer, apiKey, prompt string) error {
	var opts []runway.Option
	interval := 15 * time.Second
	if apiKey == "" {
		srv := runwaytest.NewServer(runwaytest.WithSteps(runwaytest.Steps{
			Wait: 200 * time.Millisecond, Queueing: 200 * time.Millisecond, Generating: 400 * time.Millisecond,
		}))
		defer srv.Close()
		apiKey, interval = srv.APIKey, time.Second // 1 s is the shortest interval allowed
		opts = append(opts, runway.WithBaseURL(srv.URL))
		fmt.Fprintf(w, "offline: runwaytest fake Kie API at %s (set KIE_API_KEY for the real one)\n", srv.URL)
	}
	c, err := runway.NewClient(apiKey, opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	id, err := c.Generate(ctx, runway.GenerateRequest{
		Prompt: prompt, Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
	})
	if err != nil {
		if errors.Is(err, runway.ErrOutcomeUnknown) {
			return fmt.Errorf("the task may exist, check before resubmitting: %w", err)
		}
		return err
	}
	fmt.Fprintf(w, "task %s submitted; polling every %s\n", id, interval)
	res, err := c.WaitForResult(ctx, id,
		runway.WithPollInterval(interval),
		runway.WithWaitTimeout(20*time.Minute),
		runway.WithProgress(func(t *runway.Task) { fmt.Fprintf(w, "  %s\n", t.State) }))
	var we *runway.WaitError
	switch {
	case errors.As(err, &we):
		// Timeout, cancellation, unknown state or a permanent API error: the task may still
		// finish at Kie. Store the id and wait again later.
		return fmt.Errorf("gave up waiting (last state %q): %w", we.LastState, err)
	case err != nil:
		var te *runway.TaskError
		if errors.As(err, &te) {
			return fmt.Errorf("task failed (%s, retryable %t): %w", te.Kind, te.Retryable(), err)
		}
		return err
	}
	fmt.Fprintf(w, "video: %s\ncover: %s\n", res.VideoURL, res.ImageURL)
	return nil
}
