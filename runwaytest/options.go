package runwaytest

import (
	"net"
	"time"
)

// Defaults of the fake server.
const (
	// DefaultAPIKey is the key the fake accepts unless WithAPIKey sets another.
	DefaultAPIKey = "runwaytest-key"
	// DefaultCallbackTimeout is Kie's documented callback timeout.
	DefaultCallbackTimeout = 15 * time.Second
	// DefaultCredits is what GET /api/v1/chat/credit reports until SetCredits changes it.
	DefaultCredits = 1000
	// DefaultFileSize is the size of each generated video; covers are a quarter of it.
	DefaultFileSize = 64 << 10
)

// DefaultRetryIntervals returns Kie's callback retry schedule (1 min, 5 min, 15 min) scaled
// down 6000 times: 10, 50 and 150 ms. That is 3 retries after the first attempt, then the
// fake gives up.
func DefaultRetryIntervals() []time.Duration {
	return []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond}
}

// KieRetryIntervals returns Kie's documented callback retry schedule at full length.
func KieRetryIntervals() []time.Duration {
	return []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}
}

// Option configures NewServer. Build options only with the With* functions; the zero Option
// does nothing.
type Option struct {
	apply func(*config)
}

type config struct {
	apiKey          string
	anyAPIKey       bool
	listener        net.Listener
	hmacKey         string
	steps           Steps
	retryIntervals  []time.Duration
	callbackTimeout time.Duration
	now             func() time.Time
	rateN           int
	ratePer         time.Duration
	seed            uint64
	statusErrors    bool
	notFound        NotFoundForm
	notFoundSet     bool
	defaultScript   Script
	chaos           *Chaos
	fileSize        int
}

func defaultConfig() config {
	return config{
		apiKey:          DefaultAPIKey,
		steps:           DefaultSteps,
		retryIntervals:  DefaultRetryIntervals(),
		callbackTimeout: DefaultCallbackTimeout,
		now:             time.Now,
		defaultScript:   Script{Outcome: Success()},
		fileSize:        DefaultFileSize,
	}
}

// WithAPIKey sets the key the fake accepts (default DefaultAPIKey). Requests without
// "Authorization: Bearer <key>" get HTTP 200 with body code 401, as Kie answers.
func WithAPIKey(key string) Option { return Option{func(c *config) { c.apiKey = key }} }

// WithAnyAPIKey makes the fake accept every non-empty bearer key instead of one fixed key, as a
// standalone fake for programs in any language needs (the key they send is their own
// KIE_API_KEY). Requests without an Authorization header, or with an empty key, still get
// body code 401. Server.APIKey stays the key set by WithAPIKey, which is accepted too.
func WithAnyAPIKey() Option { return Option{func(c *config) { c.anyAPIKey = true }} }

// WithListener serves the fake on l instead of a fresh loopback port, so a standalone fake can
// listen on an address the user chose. Server.URL is "http://" + l.Addr(). Close closes l.
func WithListener(l net.Listener) Option { return Option{func(c *config) { c.listener = l }} }

// WithHMACKey sets Kie's webhookHmacKey, as runway.WithHMACKey does on the receiving side:
// the fake signs every callback through runway.SignCallback (X-Webhook-Timestamp and
// X-Webhook-Signature) with the first non-empty key, as Kie signs with the account's current
// key. Give the keys in the order runway.WithHMACKey gets them during a rotation (current
// first). No non-empty key means unsigned callbacks.
func WithHMACKey(keys ...string) Option {
	return Option{func(c *config) {
		c.hmacKey = ""
		for _, k := range keys {
			if k != "" {
				c.hmacKey = k
				break
			}
		}
	}}
}

// WithSteps sets how long tasks stay in each state (default DefaultSteps). Negative
// durations count as 0.
func WithSteps(s Steps) Option { return Option{func(c *config) { c.steps = s }} }

// WithManualSteps makes tasks stay in each state until the test calls Advance or Finish.
func WithManualSteps() Option { return Option{func(c *config) { c.steps.Manual = true }} }

// WithRetryIntervals sets the waits before each callback retry (default
// DefaultRetryIntervals(); KieRetryIntervals() is the real schedule). Their count is the number
// of retries; none means a single attempt.
func WithRetryIntervals(d ...time.Duration) Option {
	return Option{func(c *config) { c.retryIntervals = append([]time.Duration(nil), d...) }}
}

// WithCallbackTimeout bounds each callback attempt (default DefaultCallbackTimeout, Kie's
// 15 s). An attempt that times out is retried like a non-2xx answer.
func WithCallbackTimeout(d time.Duration) Option {
	return Option{func(c *config) {
		if d > 0 {
			c.callbackTimeout = d
		}
	}}
}

// WithClock sets the fake's clock, used for the rate limiter window, callback signature
// timestamps, task times and download-url expiry (default time.Now). Step and retry timers
// are real timers.
func WithClock(now func() time.Time) Option {
	return Option{func(c *config) {
		if now != nil {
			c.now = now
		}
	}}
}

// WithRateLimit enforces Kie's per-account submission limit: at most n submissions (generate,
// extend, aleph) in any window of length per; more get HTTP 429 with a Retry-After in whole
// seconds and body code 429, and are not counted. Kie's default is WithRateLimit(20,
// 10*time.Second). Off by default; n <= 0 turns it off.
func WithRateLimit(n int, per time.Duration) Option {
	return Option{func(c *config) { c.rateN, c.ratePer = n, per }}
}

// WithSeed makes generated ids deterministic for a seed (default 0, also deterministic).
func WithSeed(seed uint64) Option { return Option{func(c *config) { c.seed = seed }} }

// WithHTTPStatusErrors answers application errors (401, 402, 404, 422, ...) with the code as
// the HTTP status too. By default they are HTTP 200 with the code in the body, as Kie's OpenAPI
// schemas describe; 429 from the rate limiter is always a real HTTP 429.
func WithHTTPStatusErrors() Option { return Option{func(c *config) { c.statusErrors = true }} }

// WithDefaultScript sets the script of tasks that no ScriptNext entry or chaos mix claims
// (default: success, server steps, normal callbacks).
func WithDefaultScript(s Script) Option { return Option{func(c *config) { c.defaultScript = s }} }

// WithChaos scripts every task not claimed by ScriptNext with a random mix of faults drawn
// from ch.Seed, and injects request faults on the API, see Chaos.
func WithChaos(ch Chaos) Option { return Option{func(c *config) { c.chaos = &ch }} }

// WithFileSize sets the size in bytes of generated videos (default DefaultFileSize).
func WithFileSize(n int) Option {
	return Option{func(c *config) {
		if n > 0 {
			c.fileSize = n
		}
	}}
}
