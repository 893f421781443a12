package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// Prompts the fake scripts: the first task succeeds slowly enough for polling to see every
// state; the others are quick.
const (
	catPrompt  = "A fluffy orange cat dancing in a room with disco lights"
	rudePrompt = "something the moderator will not like"
	lostPrompt = "a lighthouse in a storm"
)

var (
	// visibleSteps keep each state longer than the longest jittered poll interval (1.2 s)
	// plus a slow poll's latency, so that polling sees every state.
	visibleSteps = runwaytest.Steps{Wait: 1500 * time.Millisecond, Queueing: 1500 * time.Millisecond, Generating: 1500 * time.Millisecond}
	quickSteps   = runwaytest.Steps{Wait: 100 * time.Millisecond, Queueing: 100 * time.Millisecond, Generating: 100 * time.Millisecond}
)

// runOffline runs the three scenes against runwaytest and a local callback server.
func runOffline(ctx context.Context, out *printer) (err error) {
	start := time.Now()
	hmacKey := rand.Text()
	srv := runwaytest.NewServer(runwaytest.WithHMACKey(hmacKey), runwaytest.WithSteps(visibleSteps))
	defer srv.Close()
	srv.ScriptPrompt(rudePrompt, runwaytest.Script{Outcome: runwaytest.FailModeration(), Steps: &quickSteps})
	srv.ScriptPrompt(lostPrompt, runwaytest.Script{Steps: &quickSteps, Callback: runwaytest.CallbackFaults{Drop: true}})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cbURL := "http://" + ln.Addr().String() + callbackPath
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithCallbackURL(cbURL))
	if err != nil {
		ln.Close()
		return err
	}
	defer c.Close()
	shutdown := serveCallbacks(c, ln, hmacKey)
	defer func() { err = errors.Join(err, shutdown()) }()

	out.printf("runway-go quickstart: offline, against runwaytest (fake Kie API at %s)", srv.URL)
	out.printf("callbacks: %s (HMAC-signed, served by c.CallbackHandler)", cbURL)
	wait := []runway.WaitOption{runway.WithPollInterval(time.Second), runway.WithWaitTimeout(30 * time.Second)}

	out.printf("\n1. Generate a video and wait (callback or poll, whichever comes first)")
	res, err := generateAndWait(ctx, c, out, catPrompt, append(wait, runway.WithProgress(out.progress))...)
	out.result(res, err)
	if err != nil {
		return fmt.Errorf("scene 1: %w", err)
	}

	out.printf("\n2. A failed task, classified")
	res, err = generateAndWait(ctx, c, out, rudePrompt, wait...)
	out.result(res, err)
	out.printf("     errors.Is(err, runway.ErrModeration) = %t", errors.Is(err, runway.ErrModeration))
	if !errors.Is(err, runway.ErrModeration) {
		return fmt.Errorf("scene 2: want a moderation failure, got %w", err)
	}

	out.printf("\n3. A lost callback (the fake drops it), rescued by polling")
	res, err = generateAndWait(ctx, c, out, lostPrompt, wait...)
	out.result(res, err)
	switch {
	case err != nil:
		return fmt.Errorf("scene 3: %w", err)
	case res.Source != runway.SourcePoll:
		return fmt.Errorf("scene 3: result came from %s, want poll", res.Source)
	}

	out.printf("\ndone in %.1fs", time.Since(start).Seconds())
	return nil
}
