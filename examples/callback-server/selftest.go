package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// selftestMain runs the selftest, saving into KIE_SAVE_DIR or a temporary directory.
func selftestMain(ctx context.Context, logger *slog.Logger) error {
	dir := os.Getenv("KIE_SAVE_DIR")
	if dir == "" {
		tmp, err := os.MkdirTemp("", "callback-server-selftest")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	saved, err := runSelftest(ctx, logger, dir)
	if err == nil {
		logger.Info("selftest: saved", "video", saved.VideoPath, "cover", saved.ImagePath)
	}
	return err
}

// runSelftest starts the server on a loopback port with a SaveQueue in saveDir, has a
// runwaytest fake send it one signed callback, waits for the result func and for the queue
// to save the task's files, then shuts the server down as a signal would.
func runSelftest(ctx context.Context, logger *slog.Logger, saveDir string) (runway.SavedFiles, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hmacKey := rand.Text()
	srv := runwaytest.NewServer(runwaytest.WithHMACKey(hmacKey))
	defer srv.Close()
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithLogger(logger))
	if err != nil {
		return runway.SavedFiles{}, err
	}
	defer c.Close()

	got := make(chan *runway.Result, 1)
	type save struct {
		files runway.SavedFiles
		err   error
	}
	saved := make(chan save, 1)
	a, err := newApp(c, hmacKey, saveDir, logger,
		func(r *runway.Result) {
			select {
			case got <- r:
			default:
			}
		},
		// The fake serves its files on loopback, which downloads refuse by default.
		runway.WithAllowPrivateHosts(),
		runway.WithOnSaved(func(_ *runway.Result, s runway.SavedFiles, err error) {
			select {
			case saved <- save{s, err}:
			default:
			}
		}))
	if err != nil {
		return runway.SavedFiles{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return runway.SavedFiles{}, err
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.serve(serveCtx, ln) }()
	logger.Info("selftest: serving Kie callbacks", "addr", ln.Addr().String())

	var files runway.SavedFiles
	id, err := c.Generate(ctx, runway.GenerateRequest{
		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
		CallBackURL: "http://" + ln.Addr().String() + callbackPath,
	})
	if err == nil {
		logger.Info("selftest: submitted", "task_id", id)
		err = wait(ctx, got, func(r *runway.Result) error {
			if r.TaskID != id {
				return errors.New("selftest: callback for another task")
			}
			return nil
		})
	}
	if err == nil {
		err = wait(ctx, saved, func(s save) error {
			files = s.files
			if s.err != nil {
				return fmt.Errorf("selftest: save: %w", s.err)
			}
			return nil
		})
	}
	stop() // what SIGINT/SIGTERM does in runServer
	return files, errors.Join(err, <-served)
}

// wait receives one value from ch and checks it, or returns ctx's error.
func wait[T any](ctx context.Context, ch <-chan T, check func(T) error) error {
	select {
	case v := <-ch:
		return check(v)
	case <-ctx.Done():
		return ctx.Err()
	}
}
