package main

import (
	"context"
	"errors"
	"net"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// runLive submits one real generation (spending credits) and waits for it: by polling only,
// or also through callbacks when KIE_CALLBACK_URL names a public URL of this machine.
func runLive(ctx context.Context, out *printer, apiKey string, getenv func(string) string) (err error) {
	start := time.Now()
	opts := []runway.Option{}
	cbURL := getenv("KIE_CALLBACK_URL")
	if cbURL != "" {
		opts = append(opts, runway.WithCallbackURL(cbURL))
	}
	c, err := runway.NewClient(apiKey, opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	out.printf("runway-go quickstart: live, against %s (one real generation; it spends credits)", runway.DefaultBaseURL)
	if cbURL == "" {
		out.printf("callbacks: off (set KIE_CALLBACK_URL to a public URL to receive them); polling only")
	} else {
		addr := getenv("KIE_LISTEN_ADDR")
		if addr == "" {
			addr = ":8080"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		hmacKey := getenv("KIE_WEBHOOK_HMAC_KEY")
		shutdown := serveCallbacks(c, ln, hmacKey)
		defer func() { err = errors.Join(err, shutdown()) }()
		signed := "unsigned: set KIE_WEBHOOK_HMAC_KEY to check signatures"
		if hmacKey != "" {
			signed = "HMAC-signed"
		}
		out.printf("callbacks: %s -> %s%s (%s)", cbURL, ln.Addr(), callbackPath, signed)
	}

	out.printf("\n1. Generate a video and wait (callback or poll, whichever comes first)")
	res, err := generateAndWait(ctx, c, out, catPrompt,
		runway.WithPollInterval(10*time.Second), runway.WithWaitTimeout(15*time.Minute),
		runway.WithProgress(out.progress))
	out.result(res, err)
	if err != nil {
		return err
	}
	out.printf("\nScenes 2 and 3 script the fake server; run without KIE_API_KEY to see them.")
	out.printf("done in %.1fs", time.Since(start).Seconds())
	return nil
}
