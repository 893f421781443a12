package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/b9c9aec2/runway-go/runwaytest"
)

// fakeHMACKey signs the fake's callbacks when no key is given. It is not a secret.
const fakeHMACKey = "runway-fake-hmac-key"

var fakeCmd = &command{
	name: "fake",
	args: "[--addr HOST:PORT] [flags]",
	summary: "Serve a local fake of Kie's Runway API, for development in any language.\n" +
		"The first line on stdout is its base URL. It accepts any non-empty API key; tasks go\n" +
		"through wait, queueing and generating and succeed by themselves, then post a signed\n" +
		"callback to their callback URL. Downloads from it work from this command because its\n" +
		"base URL is loopback. It serves until Ctrl-C.",
	example: "runway fake --addr 127.0.0.1:8089 &\n" +
		"KIE_BASE_URL=http://127.0.0.1:8089 KIE_API_KEY=anything runway generate --prompt \"a cat\" --wait --interval 1s --out videos/",
	run: (*app).fake,
}

func (a *app) fake(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	addr := f.String("addr", "127.0.0.1:8089", "`HOST:PORT` to listen on (port 0 picks a free one)")
	step := f.Duration("step", time.Second, "`DURATION` a task spends in each of wait, queueing and generating")
	hmacKey := f.String("hmac-key", "", "`KEY` that signs the callbacks (default $KIE_WEBHOOK_HMAC_KEY, else\n"+fakeHMACKey+")")
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
	fmt.Fprintln(a.stdout, srv.URL)
	a.say("fake Kie API at %s: any non-empty API key works; tasks succeed after %s;\n"+
		"callbacks are signed with %s.\n"+
		"Try: KIE_BASE_URL=%s KIE_API_KEY=anything runway generate --prompt \"a cat\" --wait --interval 1s\n"+
		"Ctrl-C stops.", srv.URL, 3**step, keyNote, srv.URL)
	<-ctx.Done()
	a.say("stopped")
	return exitOK
}
