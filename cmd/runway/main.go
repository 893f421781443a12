// Command runway drives the Runway video API served by Kie.ai from a terminal or a script:
// submit generations and extensions, wait for them, download the video and cover, check the
// credit balance, receive callbacks, and run a local fake of the API for development.
//
// Install it with
//
//	go install github.com/b9c9aec2/runway-go/cmd/runway@latest
//
// and run "runway --help" for the commands. People read stderr (states as they change,
// download progress, a summary); scripts read stdout, one JSON object per line with --json.
// Exit statuses: 0 success, 1 API, network or other error, 2 usage or configuration error
// (nothing sent), 3 the task failed, 4 the wait timed out, 130 interrupted.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default behaviour comes back: a second Ctrl-C kills at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
