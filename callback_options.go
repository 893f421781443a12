package runway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultResultTimeout is the result func's default budget: well inside the 15 s Kie waits for
// an answer before it counts the delivery as failed.
const DefaultResultTimeout = 10 * time.Second

// kieCallbackTimeout is how long Kie waits for the handler's answer.
const kieCallbackTimeout = 15 * time.Second

// CallbackOption configures a CallbackHandler. Build options only with the With* functions;
// the zero CallbackOption does nothing. A value that cannot work (a negative or zero duration or
// size, a nil func, logger, clock or store, a key option without a key) is refused, never
// replaced by the default: leave the option out to get the default. NewCallbackHandler and
// Client.CallbackHandler return no error, so they panic at construction with every refused
// option, one per line, the way http.ServeMux panics on a bad pattern.
type CallbackOption struct {
	apply func(*callbackConfig) error
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
	observer      Observer
	abandoned     func(ctx context.Context, e JournalEntry, err error)
}

// WithHMACKey sets Kie's webhookHmacKey (from https://kie.ai/settings). Several keys are
// accepted at once so a key can be rotated without downtime. Once this option is given, every
// callback must carry a valid X-Webhook-Signature and X-Webhook-Timestamp (401 otherwise).
// Empty keys are skipped; if no key remains (an unset environment variable, say) the handler
// panics at construction rather than accept unsigned callbacks or refuse every one: pass the
// key, or leave WithHMACKey out to accept unsigned callbacks.
func WithHMACKey(keys ...string) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		c.keysSet = true
		for _, k := range keys {
			if k != "" {
				c.keys = append(c.keys, k)
			}
		}
		if len(c.keys) == 0 {
			return errors.New("WithHMACKey: no non-empty key (is the environment variable set?); pass Kie's webhookHmacKey, or leave the option out to accept unsigned callbacks")
		}
		return nil
	}}
}

// WithTolerance sets how far X-Webhook-Timestamp may be from the handler's clock, in the past
// or the future (default DefaultCallbackTolerance). It must be positive.
func WithTolerance(d time.Duration) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if d <= 0 {
			return fmt.Errorf("WithTolerance: %s is not a positive duration; leave the option out for the default %s", d, DefaultCallbackTolerance)
		}
		c.tolerance = d
		return nil
	}}
}

// WithMaxBodyBytes caps the callback body (default DefaultMaxCallbackBytes). It must be
// positive. Larger bodies get 413 after at most n+1 bytes were read.
func WithMaxBodyBytes(n int64) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxBodyBytes: %d is not a positive size; leave the option out for the default %d", n, DefaultMaxCallbackBytes)
		}
		c.maxBody = n
		return nil
	}}
}

// WithResultFunc sets the function that processes each accepted result (success or task
// failure: check r.Err()). It runs at most once per task id for deliveries sharing the
// handler's Deduper, within the result budget (WithResultTimeout); its ctx carries the
// request's values and ends when the budget is spent. Returning an error or panicking answers
// 500 and releases the task id, so Kie's retry runs it again. fn must not be nil. A handler
// from NewCallbackHandler needs it (it panics without: results would go nowhere); on
// Client.CallbackHandler it is optional, since results also wake WaitForResult.
func WithResultFunc(fn func(ctx context.Context, r *Result) error) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if fn == nil {
			return errors.New("WithResultFunc: nil func")
		}
		c.fn = fn
		return nil
	}}
}

// WithDeduper sets the store that makes processing at-most-once per task id. d must not be
// nil. Default: for NewCallbackHandler a NewMemoryDeduper(DefaultDedupeTTL) private to the
// handler; for Client.CallbackHandler one such deduper shared by every handler of that client
// (see Client.CallbackHandler). Use a shared store such as redisstore's when several replicas
// receive callbacks.
func WithDeduper(d Deduper) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if d == nil {
			return errors.New("WithDeduper: nil Deduper; leave the option out for the in-memory default")
		}
		c.dedupe = d
		return nil
	}}
}

// WithClock sets the clock used for the timestamp window, the default deduper's expiry and
// the rate limit of rejection log lines (default time.Now). now must not be nil.
//
// On Client.CallbackHandler, the handlers of one client without WithDeduper share one
// deduper, whose expiry runs on the clock of the first such handler: a different clock on a
// later handler does not change it (see Client.CallbackHandler).
func WithClock(now func() time.Time) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if now == nil {
			return errors.New("WithClock: nil clock; leave the option out for time.Now")
		}
		c.now = now
		return nil
	}}
}

// WithCallbackLogger sets the handler's logger (default: the client's logger for
// Client.CallbackHandler, slog.Default() for NewCallbackHandler). l must not be nil: to
// silence the handler, pass slog.New(slog.DiscardHandler). Routine events are logged at debug
// level, refused callbacks and failures at warn level (refusals rate limited per reason, see
// CallbackHandler), configuration that cannot work (such as signing being off) at error level.
// Keys and signatures are never logged.
func WithCallbackLogger(l *slog.Logger) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if l == nil {
			return errors.New("WithCallbackLogger: nil logger; pass slog.New(slog.DiscardHandler) to discard")
		}
		c.log = l
		return nil
	}}
}

// WithResultTimeout sets the budget for processing one callback: the optional API re-fetch,
// publishing to waiters and the result func (default DefaultResultTimeout). It must be
// positive. Keep it well under Kie's 15 s timeout (a budget of 15 s or more is logged at
// error level). A result func still running at the budget
// gets its ctx cancelled and the delivery is answered 503; the task id stays claimed until the
// func returns, so a retry arriving meanwhile cannot run it a second time. That claim lasts
// the budget plus two minutes (so that a replica that crashed mid-delivery does not block
// Kie's later retries): a func that ignores its ctx for longer can lose it, and a retry
// arriving after that runs the func again. Honour ctx in the result func.
func WithResultTimeout(d time.Duration) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if d <= 0 {
			return fmt.Errorf("WithResultTimeout: %s is not a positive duration; leave the option out for the default %s", d, DefaultResultTimeout)
		}
		c.resultTimeout = d
		return nil
	}}
}

// WithRefetch treats the callback body as a hint: after the signature check the handler
// fetches the task from the API (GetTask, or GetAlephTask for the Aleph shape and for tasks
// this client submitted with GenerateAleph) and delivers what the API reports, because Kie's
// signature covers only the task id and timestamp, not the body. It costs one API call per
// new callback (duplicates are answered from the Deduper without a call). A task the API does
// not yet report as finished gets 503 so Kie retries. Only Client.CallbackHandler can fetch:
// NewCallbackHandler panics when given this option.
func WithRefetch() CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		c.refetch = true
		return nil
	}}
}
