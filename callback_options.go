package runway

import (
	"context"
	"log/slog"
	"time"
)

// DefaultResultTimeout is the result func's default budget: well inside the 15 s Kie waits for
// an answer before it counts the delivery as failed.
const DefaultResultTimeout = 10 * time.Second

// kieCallbackTimeout is how long Kie waits for the handler's answer.
const kieCallbackTimeout = 15 * time.Second

// CallbackOption configures a CallbackHandler. Build options only with the With* functions;
// the zero CallbackOption does nothing.
type CallbackOption struct {
	apply func(*callbackConfig)
}

type callbackConfig struct {
	keys          []string
	keysSet       bool
	tolerance     time.Duration
	maxBody       int64
	fn            func(ctx context.Context, r *Result) error
	dedupe        Deduper
	now           func() time.Time
	log           *slog.Logger
	resultTimeout time.Duration
	refetch       bool
	abandoned     func(ctx context.Context, e JournalEntry, err error)
}

// WithHMACKey sets Kie's webhookHmacKey (from https://kie.ai/settings). Several keys are
// accepted at once so a key can be rotated without downtime. Once this option is given, every
// callback must carry a valid X-Webhook-Signature and X-Webhook-Timestamp (401 otherwise);
// empty keys are ignored, and if no key remains every callback is refused with 401 rather than
// silently accepting unsigned ones.
func WithHMACKey(keys ...string) CallbackOption {
	return CallbackOption{func(c *callbackConfig) {
		c.keysSet = true
		for _, k := range keys {
			if k != "" {
				c.keys = append(c.keys, k)
			}
		}
	}}
}

// WithTolerance sets how far X-Webhook-Timestamp may be from the handler's clock, in the past
// or the future (default DefaultCallbackTolerance; d <= 0 selects the default).
func WithTolerance(d time.Duration) CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.tolerance = d }}
}

// WithMaxBodyBytes caps the callback body (default DefaultMaxCallbackBytes; n <= 0 selects
// the default). Larger bodies get 413 after at most n+1 bytes were read.
func WithMaxBodyBytes(n int64) CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.maxBody = n }}
}

// WithResultFunc sets the function that processes each accepted result (success or task
// failure: check r.Err()). It runs at most once per task id for deliveries sharing the
// handler's Deduper, within the result budget (WithResultTimeout); its ctx carries the
// request's values and ends when the budget is spent. Returning an error or panicking answers
// 500 and releases the task id, so Kie's retry runs it again.
func WithResultFunc(fn func(ctx context.Context, r *Result) error) CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.fn = fn }}
}

// WithDeduper sets the store that makes processing at-most-once per task id (default: a
// NewMemoryDeduper(DefaultDedupeTTL) private to the handler; nil selects the default). Use a
// shared store such as redisstore's when several replicas receive callbacks.
func WithDeduper(d Deduper) CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.dedupe = d }}
}

// WithClock sets the clock used for the timestamp window and the default deduper's expiry
// (default time.Now; nil selects the default).
func WithClock(now func() time.Time) CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.now = now }}
}

// WithCallbackLogger sets the handler's logger (default: the client's logger for
// Client.CallbackHandler, discard for NewCallbackHandler). Rejections are logged at warn
// level with their precise reason, failures at error level. Keys are never logged.
func WithCallbackLogger(l *slog.Logger) CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.log = l }}
}

// WithResultTimeout sets the budget for processing one callback: the optional API re-fetch,
// publishing to waiters and the result func (default DefaultResultTimeout; d <= 0 selects the
// default). Keep it well under Kie's 15 s timeout. A result func still running at the budget
// gets its ctx cancelled and the delivery is answered 503; the task id stays claimed until the
// func returns, so a retry arriving meanwhile cannot run it a second time. That claim lasts
// the budget plus two minutes (so that a replica that crashed mid-delivery does not block
// Kie's later retries): a func that ignores its ctx for longer can lose it, and a retry
// arriving after that runs the func again. Honour ctx in the result func.
func WithResultTimeout(d time.Duration) CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.resultTimeout = d }}
}

// WithRefetch treats the callback body as a hint: after the signature check the handler
// fetches the task from the API (GetTask, or GetAlephTask for the Aleph shape and for tasks
// this client submitted with GenerateAleph) and delivers what the API reports, because Kie's
// signature covers only the task id and timestamp, not the body. It costs one API call per
// new callback (duplicates are answered from the Deduper without a call). A task the API does
// not yet report as finished gets 503 so Kie retries. Only Client.CallbackHandler can fetch:
// a NewCallbackHandler given this option refuses every callback with 500.
func WithRefetch() CallbackOption {
	return CallbackOption{func(c *callbackConfig) { c.refetch = true }}
}
