package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/b9c9aec2/runway-go/runwaytest"
)

// fakeHMACKey signs the fake's callbacks when no key is given. It is not a secret.
const fakeHMACKey = "runway-fake-hmac-key"

// failurePrompts are the prompts the fake answers with a failure of one class.
var failurePrompts = map[string]runwaytest.Outcome{
	"fail:moderation":  runwaytest.FailModeration(),
	"fail:format":      runwaytest.FailFormat(),
	"fail:quota":       runwaytest.FailQuota(),
	"fail:concurrency": runwaytest.FailConcurrency(),
	"fail:size":        runwaytest.FailSize(),
	"fail:input":       runwaytest.FailInput(),
	"fail:transient":   runwaytest.FailTransient(),
	"fail:server":      runwaytest.FailServer(),
	"fail:unknown":     runwaytest.FailUnknown(),
}

// stuckPrompt makes a task that stays in its first state until the fake stops.
const stuckPrompt = "stuck"

func failureClasses() []string {
	var classes []string
	for p := range failurePrompts {
		classes = append(classes, strings.TrimPrefix(p, "fail:"))
	}
	slices.Sort(classes)
	return classes
}

var fakeCmd = &command{
	name: "fake",
	args: "[--addr HOST:PORT] [flags]",
	summary: "Serve a local fake of Kie's Runway API, for development in any language.\n" +
		"The first line on stdout is its base URL. It accepts any non-empty API key; tasks go\n" +
		"through wait, queueing and generating and succeed by themselves, then post a signed\n" +
		"callback to their callback URL. Downloads from it work from this command because its\n" +
		"base URL is loopback. It serves until Ctrl-C.\n" +
		"\nSome prompts script other outcomes, to try failure handling: \"fail:CLASS\" fails with\n" +
		"Kie's message for that class, one of\n  " + strings.Join(failureClasses(), ", ") + ";\n" +
		"\"stuck\" never finishes (to try timeouts).",
	example: "runway fake --addr 127.0.0.1:8089 &\n" +
		"KIE_BASE_URL=http://127.0.0.1:8089 KIE_API_KEY=anything runway generate --prompt \"a cat\" --wait --interval 1s --out videos/",
	run: (*app).fake,
}

func (a *app) fake(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	addr := f.String("addr", "127.0.0.1:8089", "listen on `HOST:PORT` (port 0 picks a free one)")
	step := f.Duration("step", time.Second, "how long a task stays in each of wait, queueing and generating")
	hmacKey := f.String("hmac-key", "", "sign the callbacks with `KEY` (default $KIE_WEBHOOK_HMAC_KEY, else\n"+fakeHMACKey+")")
	if _, code, ok := f.parse(a, args, 0, 0); !ok {
		return code
	}
	if *step < 0 {
		return f.fail(a, "--step must not be negative, got %s", *step)
	}
	key := *hmacKey
	if key == "" {
		key = a.env("KIE_WEBHOOK_HMAC_KEY")
	}
	keyNote := "the key from --hmac-key / KIE_WEBHOOK_HMAC_KEY"
	if key == "" {
		key, keyNote = fakeHMACKey, fakeHMACKey
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		a.say("runway fake: %v\nPick another address with --addr (port 0 picks a free one).", err)
		return exitError
	}
	srv := runwaytest.NewServer(
		runwaytest.WithListener(ln),
		runwaytest.WithAnyAPIKey(),
		runwaytest.WithSteps(runwaytest.Steps{Wait: *step, Queueing: *step, Generating: *step}),
		runwaytest.WithHMACKey(key),
		// Kie's retry schedule (1, 5, 15 minutes) in seconds.
		runwaytest.WithRetryIntervals(time.Second, 5*time.Second, 15*time.Second),
		runwaytest.WithSeed(uint64(time.Now().UnixNano())),
	)
	defer srv.Close()
	for prompt, outcome := range failurePrompts {
		srv.ScriptPrompt(prompt, runwaytest.Script{Outcome: outcome})
	}
	srv.ScriptPrompt(stuckPrompt, runwaytest.Script{Steps: &runwaytest.Steps{Manual: true}})
	fmt.Fprintln(a.stdout, srv.URL)
	a.say("fake Kie API at %s: any non-empty API key works; tasks succeed after %s;\n"+
		"callbacks are signed with %s.\n"+
		"Try: KIE_BASE_URL=%s KIE_API_KEY=anything runway generate --prompt \"a cat\" --wait --interval 1s\n"+
		"Ctrl-C stops.", srv.URL, 3**step, keyNote, srv.URL)
	<-ctx.Done()
	a.say("stopped")
	return exitOK
}
