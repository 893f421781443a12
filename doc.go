// Package runway is a Go client for the Runway AI video API served by Kie.ai
// (https://api.kie.ai; not RunwayML's own developer API).
//
// It submits video tasks (Generate, Extend, GenerateAleph), receives Kie's completion
// callbacks through an http.Handler that verifies, decodes and deduplicates them, and waits for
// results with WaitForResult, which returns on the callback or on polling, whichever comes
// first, so a lost callback never strands a paid task.
//
// # Quick start
//
//	c, err := runway.NewClient(os.Getenv("KIE_API_KEY"),
//		runway.WithCallbackURL("https://example.com/kie/callback"))
//	if err != nil { ... }
//	id, err := c.Generate(ctx, runway.GenerateRequest{
//		Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p,
//		AspectRatio: runway.AspectRatio16x9,
//	})
//	res, err := c.WaitForResult(ctx, id)
//
// # Callbacks
//
// Mount the client's handler in your mux; it also wakes that client's WaitForResult calls:
//
//	mux.Handle("/kie/callback", c.CallbackHandler(runway.WithHMACKey(key)))
//
// # Polling
//
// WaitForResult polls the details endpoint at once and then every DefaultPollInterval (with
// jitter) until a terminal state, a callback, the wait timeout or the context ends it.
//
// # Errors
//
// A request the API refused is an *APIError (errors.Is against ErrUnauthorized,
// ErrRateLimited, ...). A task that ran and failed is a *TaskError classified by Classify
// (errors.Is against ErrModeration, ErrQuota, ...). A request refused locally is a
// *ValidationError (ErrInvalidRequest). A wait that gave up is a *WaitError. A submission
// that timed out or got a server error after it was sent matches ErrOutcomeUnknown: the task
// may exist, so look it up before submitting again.
//
// # Retries
//
// Safe requests (the details endpoints, Credits, and DownloadURL although it is a POST) retry
// network errors, 408, 429, 455 and 5xx other than 501 and 505, whether they come as HTTP
// status or envelope code. Submissions (Generate, Extend, GenerateAleph) have no idempotency
// key, so they retry only when the API certainly created nothing: a body code 429 whatever the
// HTTP status (Kie rejects rate-limited requests rather than queueing them), and failures
// before a connection was made. Waits are jittered, capped (WithRetryBackoff) and honour
// Retry-After up to the cap; the context bounds everything.
//
// # Downloads
//
// Download streams a result's file to an io.Writer, resuming with Range requests after a
// broken connection; SaveResult writes a result's video and cover into a directory under names
// FindSavedFiles finds again; SaveQueue saves results in the background with a bounded number
// of workers. File hosts are checked before every connection: private, loopback and other
// special-purpose addresses are refused unless WithAllowPrivateHosts is given.
//
// # Surviving restarts
//
// With WithJournal (NewFileJournal, or redisstore for several replicas) every submitted task
// is recorded until its outcome is handled, and CallbackHandler.Reconcile polls the tasks a
// previous process left pending, so a restart never loses a paid task.
//
// # Observing
//
// WithObserver (and WithCallbackObserver for a standalone handler) reports the start and end
// of every operation, for metrics and tracing; the runwayotel module adapts it to
// OpenTelemetry. Without a logger the SDK logs to slog.Default().
//
// # Command line
//
// The runway command (cmd/runway) submits, waits, downloads and checks credits from a
// terminal or a script, and runs a local fake of the API (package runwaytest) for development.
package runway
