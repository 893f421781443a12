package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// callbackPath is where the callback handler is mounted.
const callbackPath = "/kie/callback"

// serveCallbacks serves c's CallbackHandler at callbackPath on ln, checking signatures with
// hmacKey when it is set, and returns a function that shuts the server down gracefully.
func serveCallbacks(c *runway.Client, ln net.Listener, hmacKey string) (shutdown func() error) {
	var opts []runway.CallbackOption
	if hmacKey != "" {
		opts = append(opts, runway.WithHMACKey(hmacKey))
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+callbackPath, c.CallbackHandler(opts...))
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      20 * time.Second, // above the handler's 10 s budget
		IdleTimeout:       time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := hs.Shutdown(ctx)
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			return serr
		}
		return err
	}
}

// generateAndWait submits a generation and waits for its result.
func generateAndWait(ctx context.Context, c *runway.Client, out *printer, prompt string, opts ...runway.WaitOption) (*runway.Result, error) {
	id, err := c.Generate(ctx, runway.GenerateRequest{
		Prompt:      prompt,
		Duration:    5,
		Quality:     runway.Quality720p,
		AspectRatio: runway.AspectRatio16x9,
	})
	if err != nil {
		return nil, err
	}
	out.printf("   task %s submitted", id)
	return c.WaitForResult(ctx, id, opts...)
}
