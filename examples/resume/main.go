// Command resume shows a service that survives restarts: it journals every task it submits
// (runway.WithJournal on a runway.FileJournal), so a task still running when the process
// stops is finished by the next process, whose Reconcile polls the journaled tasks and hands
// each outcome, with the Meta given at submission, to the same result func a callback would
// reach.
//
// With KIE_API_KEY set, run it twice: first with -submit, which submits one generation
// (spending credits), journals it and exits at once, as a deploy or a crash would end it; then
// without -submit, which reconciles what the journal holds and exits when nothing is pending.
//
//	go run ./examples/resume -submit "a paper boat on a river"
//	go run ./examples/resume
//
// Without a key it plays both lives in one run against runwaytest, a fake Kie API that keeps
// running between them, in about two seconds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

func main() {
	journal := flag.String("journal", "runway-pending.journal", "the journal file")
	submit := flag.String("submit", "", "submit a generation with this prompt, journal it and exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv("KIE_API_KEY"), *journal, *submit); err != nil {
		fmt.Fprintln(os.Stderr, "resume:", err)
		os.Exit(1)
	}
}

// life is what one process needs to reach the API.
type life struct {
	apiKey   string
	opts     []runway.Option
	interval time.Duration
	journal  string
}

// run submits (with a prompt) or reconciles; without an API key it does both offline, with
// a "restart" in between.
func run(ctx context.Context, w io.Writer, apiKey, journal, prompt string) error {
	if apiKey != "" {
		l := life{apiKey: apiKey, interval: runway.DefaultPollInterval, journal: journal}
		if prompt != "" {
			return l.submit(ctx, w, prompt)
		}
		return l.reconcile(ctx, w)
	}
	srv := runwaytest.NewServer(runwaytest.WithSteps(runwaytest.Steps{
		Wait: 200 * time.Millisecond, Queueing: 200 * time.Millisecond, Generating: 400 * time.Millisecond,
	}))
	defer srv.Close()
	fmt.Fprintf(w, "offline: runwaytest fake Kie API at %s (set KIE_API_KEY for the real one)\n", srv.URL)
	dir, err := os.MkdirTemp("", "runway-resume")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l := life{apiKey: srv.APIKey, opts: []runway.Option{runway.WithBaseURL(srv.URL)},
		interval: time.Second, journal: filepath.Join(dir, "pending.journal")}
	if prompt == "" {
		prompt = "A paper boat drifting down a rainy street"
	}
	if err := l.submit(ctx, w, prompt); err != nil {
		return err
	}
	fmt.Fprintln(w, "--- restart ---")
	return l.reconcile(ctx, w)
}

// submit journals one generation and returns without waiting for it.
func (l life) submit(ctx context.Context, w io.Writer, prompt string) error {
	j, err := runway.NewFileJournal(l.journal)
	if err != nil {
		return err
	}
	defer j.Close()
	c, err := runway.NewClient(l.apiKey, append(l.opts, runway.WithJournal(j))...)
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := c.Generate(ctx, runway.GenerateRequest{
		Prompt: prompt, Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
		Meta: map[string]string{"order": "order-1001"}, // yours; never sent to Kie
	})
	if errors.Is(err, runway.ErrJournal) {
		return fmt.Errorf("task %s was created but is not journaled; keep its id: %w", id, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "task %s submitted and journaled in %s; stopping before it finishes\n", id, l.journal)
	return nil
}

// reconcile finishes every journaled task, then returns.
func (l life) reconcile(ctx context.Context, w io.Writer) error {
	j, err := runway.NewFileJournal(l.journal)
	if err != nil {
		return err
	}
	defer j.Close()
	pending, err := j.Pending(ctx)
	if err != nil {
		return err
	}
	if len(pending) == 0 {
		fmt.Fprintln(w, "nothing pending")
		return nil
	}
	fmt.Fprintf(w, "%d task(s) pending in the journal; reconciling every %s\n", len(pending), l.interval)
	c, err := runway.NewClient(l.apiKey, append(l.opts, runway.WithJournal(j))...)
	if err != nil {
		return err
	}
	defer c.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	left := len(pending)
	settled := func() {
		mu.Lock()
		defer mu.Unlock()
		if left--; left == 0 {
			cancel() // a real service keeps Reconcile running for as long as it runs
		}
	}
	h := c.CallbackHandler(
		runway.WithResultFunc(func(_ context.Context, r *runway.Result) error {
			if err := r.Err(); err != nil {
				fmt.Fprintf(w, "task %s for %s failed after the restart (via %s): %v\n", r.TaskID, r.Meta["order"], r.Source, err)
			} else {
				fmt.Fprintf(w, "task %s for %s finished after the restart (via %s): %s\n", r.TaskID, r.Meta["order"], r.Source, r.VideoURL)
			}
			settled()
			return nil
		}),
		runway.WithAbandoned(func(_ context.Context, e runway.JournalEntry, err error) {
			fmt.Fprintf(w, "task %s for %s abandoned: %v\n", e.TaskID, e.Meta["order"], err)
			settled()
		}),
	)
	// A service also mounts h as its callback endpoint; Reconcile covers the callbacks that
	// were missed, or never configured, like here.
	if err := h.Reconcile(ctx, runway.WithPollInterval(l.interval)); !errors.Is(err, context.Canceled) {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if left > 0 {
		return fmt.Errorf("stopped with %d task(s) still pending; run again to finish them", left)
	}
	return nil
}
