package main

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// runSelftest starts the server on a loopback port, has a runwaytest fake send it one signed
// callback, waits for the result func, then shuts the server down as a signal would.
func runSelftest(ctx context.Context, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hmacKey := rand.Text()
	srv := runwaytest.NewServer(runwaytest.WithHMACKey(hmacKey))
	defer srv.Close()
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()

	got := make(chan *runway.Result, 1)
	a, err := newApp(c, hmacKey, "", logger, func(r *runway.Result) {
		select {
		case got <- r:
		default:
		}
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.serve(serveCtx, ln) }()
	logger.Info("selftest: serving Kie callbacks", "addr", ln.Addr().String())

	id, err := c.Generate(ctx, runway.GenerateRequest{
		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
		CallBackURL: "http://" + ln.Addr().String() + callbackPath,
	})
	if err == nil {
		logger.Info("selftest: submitted", "task_id", id)
		select {
		case r := <-got:
			if r.TaskID != id {
				err = errors.New("selftest: callback for another task")
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	stop() // what SIGINT/SIGTERM does in runServer
	return errors.Join(err, <-served)
}
