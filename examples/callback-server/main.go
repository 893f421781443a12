// Command callback-server mounts runway-go's CallbackHandler in an ordinary net/http server
// next to the application's other routes, with http.Server timeouts, signature checks with the
// HMAC key from the environment and a graceful shutdown on SIGINT/SIGTERM that lets callbacks
// being processed finish.
//
// Environment:
//
//	KIE_API_KEY           API key (required)
//	KIE_WEBHOOK_HMAC_KEY  webhookHmacKey from https://kie.ai/settings (required: unsigned
//	                      callbacks are refused)
//	KIE_LISTEN_ADDR       listen address (default :8080); Kie POSTs to <public URL>/kie/callback
//	KIE_SAVE_DIR          when set, finished videos are saved there by a background SaveQueue
//
// With -selftest it runs offline instead: a runwaytest fake Kie API sends one signed callback
// to this server on a loopback port, the SaveQueue saves the task's video and cover (into
// KIE_SAVE_DIR, or a temporary directory removed afterwards), then the server shuts down and
// the command exits 0.
//
//	go run ./examples/callback-server -selftest
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	runway "github.com/b9c9aec2/runway-go"
)

func main() {
	selftest := flag.Bool("selftest", false, "run offline against a fake Kie API, receive one callback and exit")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if *selftest {
		err = selftestMain(ctx, logger)
	} else {
		err = runServer(ctx, logger)
	}
	if err != nil {
		logger.Error("callback-server", "error", err)
		os.Exit(1)
	}
}

// runServer serves callbacks for the real API until a signal arrives.
func runServer(ctx context.Context, logger *slog.Logger) error {
	apiKey, hmacKey := os.Getenv("KIE_API_KEY"), os.Getenv("KIE_WEBHOOK_HMAC_KEY")
	if apiKey == "" || hmacKey == "" {
		return errors.New("set KIE_API_KEY and KIE_WEBHOOK_HMAC_KEY (or run with -selftest)")
	}
	addr := os.Getenv("KIE_LISTEN_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	c, err := runway.NewClient(apiKey, runway.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()
	app, err := newApp(c, hmacKey, os.Getenv("KIE_SAVE_DIR"), logger, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("serving Kie callbacks", "addr", ln.Addr().String(), "path", callbackPath)
	return app.serve(ctx, ln)
}
