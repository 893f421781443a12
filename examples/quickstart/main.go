// Command quickstart shows the whole runway-go flow in a few seconds: submit a generation,
// receive Kie's signed callback through the client's CallbackHandler, wait with WaitForResult
// while the task moves through its states, then a failure classified and a lost callback
// rescued by polling.
//
// Without KIE_API_KEY it runs offline against runwaytest, an in-process fake of the Kie API:
// no key, no network, no credits spent.
//
// With KIE_API_KEY set it submits one real generation (spending credits) and waits by
// polling. If KIE_CALLBACK_URL names a public URL that reaches this machine, it also serves
// callbacks on KIE_LISTEN_ADDR (default :8080), checked with KIE_WEBHOOK_HMAC_KEY when set.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run picks the live or the offline flow from the environment.
func run(ctx context.Context, w io.Writer, getenv func(string) string) error {
	out := &printer{w: w}
	if key := getenv("KIE_API_KEY"); key != "" {
		return runLive(ctx, out, key, getenv)
	}
	return runOffline(ctx, out)
}
