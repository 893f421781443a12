package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// callbackPath is where Kie's callbacks are received.
const callbackPath = "/kie/callback"

// shutdownGrace bounds the graceful shutdown: above Kie's 15 s callback timeout, so a callback
// being processed when the signal arrives is answered.
const shutdownGrace = 20 * time.Second

// app is the existing HTTP application the callback handler is mounted in.
type app struct {
	hs     *http.Server
	queue  *runway.SaveQueue // nil when results are not saved
	logger *slog.Logger
}

// newApp builds the server: the application's own routes plus the callback handler. Results
// go to onResult (may be nil), and to a SaveQueue in saveDir when saveDir is set; saveOpts
// go to the queue (WithOnSaved, and WithAllowPrivateHosts for the selftest's loopback files).
func newApp(c *runway.Client, hmacKey, saveDir string, logger *slog.Logger, onResult func(*runway.Result), saveOpts ...runway.DownloadOption) (*app, error) {
	a := &app{logger: logger}
	if saveDir != "" {
		q, err := runway.NewSaveQueue(c, saveDir, 2, 64, saveOpts...)
		if err != nil {
			return nil, err
		}
		a.queue = q
	}
	result := func(ctx context.Context, r *runway.Result) error {
		if err := r.Err(); err != nil {
			logger.Warn("task failed", "task_id", r.TaskID, "error", err)
		} else {
			logger.Info("task succeeded", "task_id", r.TaskID, "source", r.Source)
		}
		if onResult != nil {
			onResult(r)
		}
		if a.queue != nil {
			return a.queue.Enqueue(ctx, r) // a full queue answers 5xx: Kie retries later
		}
		return nil
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("POST "+callbackPath, c.CallbackHandler(
		runway.WithHMACKey(hmacKey),
		runway.WithResultFunc(result),
	))
	a.hs = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      20 * time.Second, // above the handler's 10 s result budget
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// serve runs the server on ln until ctx ends, then shuts down gracefully: it stops accepting,
// lets running callbacks finish, then drains the save queue.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- a.hs.Serve(ln) }()
	var err error
	select {
	case err = <-served: // the server failed on its own
	case <-ctx.Done():
		a.logger.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		err = a.hs.Shutdown(sctx)
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if a.queue != nil {
			err = errors.Join(err, a.queue.Close(sctx))
		}
	}
	return err
}
