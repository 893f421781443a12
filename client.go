package runway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Version is the SDK version sent in the User-Agent.
const Version = "0.2.0"

// Defaults.
const (
	DefaultBaseURL            = "https://api.kie.ai"
	DefaultPollInterval       = 30 * time.Second
	DefaultWaitTimeout        = 15 * time.Minute
	DefaultCallbackTolerance  = 5 * time.Minute
	DefaultMaxCallbackBytes   = 1 << 20
	DefaultRequestTimeout     = 60 * time.Second
	maxResponseBytes          = 1 << 20
	maxErrorSnippet           = 256
	maxRememberedAlephTaskIDs = 100000
)

// userAgent names the SDK and its version.
var userAgent = "runway-go/" + Version + " (+https://github.com/b9c9aec2/runway-go)"

// Client talks to the Kie Runway API. It is safe for concurrent use.
type Client struct {
	clientConfig // the options, defaults filled in

	apiKey  string
	baseURL *url.URL              // clientConfig.rawBaseURL, parsed
	api     *retryablehttp.Client // built once by NewClient, see transport.go

	// The clock, injectable for tests. Every wait (retries inside retryablehttp, downloads,
	// the submission limiter) runs on real timers, which testing/synctest fakes in tests.
	now func() time.Time

	hub        *hub
	stopListen func()
	stopResync func()

	aleph   *idSet         // task ids submitted through GenerateAleph
	limiter *submitLimiter // nil when submissions are not rate limited

	dlHooks downloadHooks   // network seams of downloads, for tests
	dl      downloadClients // built at the first download, see downloadClient

	// secrets are kept out of error texts: the API key and the HMAC keys of the client's
	// callback handlers. Copy on write.
	secrets atomic.Pointer[[]string]

	// Shared by the client's callback handlers that use the default deduper.
	cbOnce    sync.Once
	cbDedupe  Deduper
	cbFlights *flights
	obs       *observer    // nil without WithObserver
	jnl       *journalHook // nil without WithJournal
}

// Option configures a Client. Build options only with the With* functions; the zero Option
// does nothing.
type Option struct {
	apply func(*clientConfig) error
}

type clientConfig struct {
	rawBaseURL  string
	hc          *http.Client
	logger      *slog.Logger
	maxRetries  int
	waitMin     time.Duration
	waitMax     time.Duration
	callbackURL string
	bus         ResultBus
	dlTransport *http.Transport
	journal     Journal

	submitLimit    int
	submitWindow   time.Duration
	submitLimitSet bool

	observer Observer
}

// WithBaseURL sets the API base URL (default DefaultBaseURL). It must be an absolute http(s)
// URL; a path prefix is kept.
func WithBaseURL(rawURL string) Option {
	return Option{func(c *clientConfig) error {
		u, err := parseHTTPURL(rawURL)
		if err != nil {
			return fmt.Errorf("WithBaseURL: %w", err)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return errors.New("WithBaseURL: URL must not carry a query, fragment or user info")
		}
		c.rawBaseURL = rawURL
		return nil
	}}
}

// WithHTTPClient sets the HTTP client used for API calls. Its Timeout bounds each attempt.
// nil is an error. The default has a DefaultRequestTimeout per attempt.
//
// Downloads (Download, SaveResult) use its Transport too, unless WithDownloadTransport gives
// them another, with the host check put in: unless WithAllowPrivateHosts is given, direct
// connections to file hosts are made by the SDK's checked dialer, which replaces the
// transport's DialContext (and Dial, DialTLS, DialTLSContext). A custom dialer, such as a
// SOCKS or VPN dialer, is therefore not used for downloads, which leave outside it; route
// them with the transport's Proxy func instead, or turn the check off with
// WithAllowPrivateHosts. A Transport that is not an *http.Transport (otelhttp, retry
// middleware) cannot get the check: give downloads a plain one with WithDownloadTransport.
func WithHTTPClient(hc *http.Client) Option {
	return Option{func(c *clientConfig) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil *http.Client")
		}
		c.hc = hc
		return nil
	}}
}

// WithLogger sets the logger of the client and of its callback handlers (default:
// slog.Default() as it is when NewClient is called). l must not be nil: to silence the SDK,
// pass slog.New(slog.DiscardHandler). Routine events, such as retries, are logged at debug
// level, refused input and failures at warn level, configuration that cannot work at error
// level. The API key and HMAC keys are never logged.
func WithLogger(l *slog.Logger) Option {
	return Option{func(c *clientConfig) error {
		if l == nil {
			return errors.New("WithLogger: nil logger; pass slog.New(slog.DiscardHandler) to discard")
		}
		c.logger = l
		return nil
	}}
}

// WithMaxRetries sets how many times a safe request (GetTask, GetAlephTask, Credits,
// DownloadURL) is retried after the first attempt, and how many times a submission is re-sent
// after a 429 (default DefaultMaxRetries). 0 disables retries; negative is an error.
func WithMaxRetries(n int) Option {
	return Option{func(c *clientConfig) error {
		if n < 0 {
			return fmt.Errorf("WithMaxRetries: negative count %d", n)
		}
		c.maxRetries = n
		return nil
	}}
}

// WithRetryBackoff sets the bounds of the jittered exponential backoff between retries
// (default DefaultRetryWaitMin to DefaultRetryWaitMax). Retry-After is honoured up to max.
func WithRetryBackoff(min, max time.Duration) Option {
	return Option{func(c *clientConfig) error {
		if min <= 0 || max < min {
			return fmt.Errorf("WithRetryBackoff: need 0 < min <= max, got %s, %s", min, max)
		}
		c.waitMin, c.waitMax = min, max
		return nil
	}}
}

// WithCallbackURL sets the callBackUrl used when a request leaves CallBackURL empty.
func WithCallbackURL(rawURL string) Option {
	return Option{func(c *clientConfig) error {
		if _, err := parseHTTPURL(rawURL); err != nil {
			return fmt.Errorf("WithCallbackURL: %w", err)
		}
		c.callbackURL = rawURL
		return nil
	}}
}

// WithResultBus sets the bus that carries callback results to waiters (default: an in-process
// NewMemoryResultBus). Use a shared bus, such as redisstore's, when several replicas serve
// callbacks and waits. If b also implements ResyncNotifier, the client re-checks the tasks it
// is waiting for after each resync (see ResyncNotifier). nil is an error.
func WithResultBus(b ResultBus) Option {
	return Option{func(c *clientConfig) error {
		if b == nil {
			return errors.New("WithResultBus: nil bus")
		}
		c.bus = b
		return nil
	}}
}

// NewClient returns a client for apiKey. An empty key is an error wrapping ErrMissingAPIKey;
// all invalid options are reported together.
func NewClient(apiKey string, opts ...Option) (*Client, error) {
	cfg := clientConfig{
		rawBaseURL: DefaultBaseURL,
		maxRetries: DefaultMaxRetries,
		waitMin:    DefaultRetryWaitMin,
		waitMax:    DefaultRetryWaitMax,
	}
	var errs []error
	if strings.TrimSpace(apiKey) == "" {
		errs = append(errs, ErrMissingAPIKey)
	} else if !validHeaderToken(apiKey) {
		// Caught here rather than as a transport error on every (retried) call; the key
		// itself is never echoed.
		errs = append(errs, errors.New("API key contains spaces or control characters"))
	}
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errorf("runway: NewClient: %w", errors.Join(errs...))
	}
	base, _ := parseHTTPURL(cfg.rawBaseURL)
	if cfg.hc == nil {
		cfg.hc = defaultHTTPClient()
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.bus == nil {
		cfg.bus = NewMemoryResultBus(0, 0)
	}
	if !cfg.submitLimitSet {
		cfg.submitLimit, cfg.submitWindow = DefaultSubmitLimit, DefaultSubmitWindow
	}
	c := &Client{
		clientConfig: cfg,
		apiKey:       apiKey,
		baseURL:      base,
		now:          time.Now,
		hub:          newHub(),
		aleph:        newIDSet(maxRememberedAlephTaskIDs),
	}
	c.limiter = newSubmitLimiter(cfg.submitLimit, cfg.submitWindow)
	c.api = newRetryClient(c)
	c.secrets.Store(&[]string{apiKey})
	c.obs = newObserver(cfg.observer, c.logger, func() time.Time { return c.now() })
	if cfg.journal != nil {
		c.jnl = newJournalHook(cfg.journal, c.logger, c.obs, func() time.Time { return c.now() })
	}
	c.stopListen = c.bus.Listen(c.hub.deliver)
	c.stopResync = func() {}
	if rn, ok := c.bus.(ResyncNotifier); ok {
		c.stopResync = rn.OnResync(c.resync)
	}
	return c, nil
}

// Close detaches the client from its ResultBus and releases the idle connections downloads
// kept open. It does not close the bus or the HTTP client. A client is usable without ever
// calling Close when it uses the default in-process bus.
func (c *Client) Close() error {
	c.stopListen()
	c.stopResync()
	c.dl.closeIdle()
	return nil
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 30 * time.Second
	t.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: t, Timeout: DefaultRequestTimeout}
}

// keepIdle hides the transport's CloseIdleConnections from retryablehttp, which calls it
// after every failed call: on a client shared by concurrent calls (and maybe by the caller's
// own code) that would drop every pooled connection whenever one call fails. v0.7.8 still does
// (TestPinRetryablehttpClosesIdleConnectionsOnFailure fails when an upgrade stops it).
type keepIdle struct{ http.RoundTripper }

// keepIdleClient returns a shallow copy of hc whose transport is wrapped in keepIdle.
func keepIdleClient(hc *http.Client) *http.Client {
	cp := *hc
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	cp.Transport = keepIdle{rt}
	return &cp
}

// validHeaderToken reports whether s is printable ASCII without spaces, so it is usable in
// an Authorization header as is.
func validHeaderToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// parseHTTPURL accepts only absolute http(s) URLs with a host.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", redactURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("URL must be absolute http or https")
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

// redactURLError drops the URL (which may carry a signed query) from a *url.Error, and
// every query from the text of the error inside (see redactQueries).
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, redactQueries(ue.Err))
	}
	return err
}

// Generate submits a text-to-video or image-to-video task and returns its id.
func (c *Client) Generate(ctx context.Context, req GenerateRequest) (taskID string, err error) {
	ctx, op := c.obs.start(ctx, OpGenerate, "")
	defer c.obs.submitEnd(op, &taskID, &err)
	if req.CallBackURL == "" {
		req.CallBackURL = c.callbackURL
	}
	if err := req.validate(); err != nil {
		return "", err
	}
	return c.submitJournaled(ctx, "/api/v1/runway/generate", generateBody(req), false, req.Meta)
}

// Extend submits an extension of a finished generation and returns the new task's id.
func (c *Client) Extend(ctx context.Context, req ExtendRequest) (taskID string, err error) {
	ctx, op := c.obs.start(ctx, OpExtend, "")
	defer c.obs.submitEnd(op, &taskID, &err)
	if req.CallBackURL == "" {
		req.CallBackURL = c.callbackURL
	}
	if err := req.validate(); err != nil {
		return "", err
	}
	return c.submitJournaled(ctx, "/api/v1/runway/extend", extendBody(req), false, req.Meta)
}

// GenerateAleph submits an Aleph video-to-video task and returns its id. The client remembers
// the id so that WaitForResult polls the Aleph details endpoint for it.
//
// Deprecated: Kie has discontinued Runway Aleph ("no longer available"), so new submissions
// are expected to fail. The method is kept so that existing code compiles; GetAlephTask,
// WaitForResult (with WithAleph) and the callback handler still work for Aleph tasks created
// before the shutdown. Generate and Extend are unaffected.
func (c *Client) GenerateAleph(ctx context.Context, req AlephRequest) (taskID string, err error) {
	ctx, op := c.obs.start(ctx, OpGenerateAleph, "")
	defer c.obs.submitEnd(op, &taskID, &err)
	if req.CallBackURL == "" {
		req.CallBackURL = c.callbackURL
	}
	if err := req.validate(); err != nil {
		return "", err
	}
	return c.submitJournaled(ctx, "/api/v1/aleph/generate", alephBody(req), true, req.Meta)
}

// GetTask fetches a Runway task's details (GET /api/v1/runway/record-detail).
func (c *Client) GetTask(ctx context.Context, taskID string) (*Task, error) {
	return c.getTask(ctx, taskID, false, c.maxRetries)
}

// GetAlephTask fetches an Aleph task's details (GET /api/v1/aleph/record-info), normalised into
// a Task: successFlag 1 is StateSuccess, 0 with an error is StateFail, 0 without one is
// StateGenerating. paramJson stays in Task.Raw.
//
// Deprecated: Kie has discontinued Runway Aleph. GetAlephTask keeps working for looking up
// Aleph tasks created before the shutdown, for as long as Kie answers for them; Runway tasks
// use GetTask.
func (c *Client) GetAlephTask(ctx context.Context, taskID string) (*Task, error) {
	return c.getTask(ctx, taskID, true, c.maxRetries)
}

// getTask fetches either details endpoint with retries retries; the poller passes 0 because
// it runs its own backoff charged against the wait deadline.
func (c *Client) getTask(ctx context.Context, taskID string, aleph bool, retries int) (t *Task, err error) {
	ctx, op := c.obs.start(ctx, OpGetTask, taskID)
	defer c.obs.pollEnd(op, taskID, aleph, &t, &err)
	if err := validTaskID("taskID", taskID); err != nil {
		return nil, err
	}
	path, decode := "/api/v1/runway/record-detail", decodeTask
	if aleph {
		path, decode = "/api/v1/aleph/record-info", decodeAlephTask
	}
	data, err := c.do(ctx, http.MethodGet, path, url.Values{"taskId": {taskID}}, nil, true, retries)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == 422 && recordMissing(ae.Message) {
			ae.notFound = true
		}
		return nil, err
	}
	if isNull(data) {
		// Kie has answered an id it does not know with success and no data.
		return nil, &APIError{StatusCode: http.StatusOK, Code: 200, Method: http.MethodGet, Path: path,
			Message: "no task with this id (data is null)", notFound: true}
	}
	t, err = decode(data)
	if err != nil {
		return nil, c.decodeError(http.MethodGet, path, data, err)
	}
	if t.ID == "" {
		t.ID = taskID
	}
	t.secrets = c.secretList()
	return t, nil
}

// recordMissing reports the message with which the details endpoints answer code 422 for an id
// they do not know ("The record does not exist"), in any case and with any trailing
// punctuation. Any other 422 is a validation error.
func recordMissing(msg string) bool {
	m := strings.TrimRight(strings.ToLower(strings.TrimSpace(msg)), " .!。")
	return m == "the record does not exist" || m == "record does not exist"
}

// Credits returns the account's remaining credits (GET /api/v1/chat/credit).
func (c *Client) Credits(ctx context.Context) (int, error) {
	data, err := c.do(ctx, http.MethodGet, "/api/v1/chat/credit", nil, nil, true, c.maxRetries)
	if err != nil {
		return 0, err
	}
	var n flexInt
	if err := json.Unmarshal(data, &n); err != nil {
		return 0, c.decodeError(http.MethodGet, "/api/v1/chat/credit", data, err)
	}
	return int(n), nil
}

// DownloadURL exchanges a Kie file URL for a temporary direct-download URL, valid 20 minutes
// (POST /api/v1/common/download-url). The returned URL is a credential: do not log it.
func (c *Client) DownloadURL(ctx context.Context, fileURL string) (string, error) {
	if err := validURL("fileURL", fileURL, true); err != nil {
		return "", err
	}
	const path = "/api/v1/common/download-url"
	data, err := c.do(ctx, http.MethodPost, path, nil, struct {
		URL string `json:"url"`
	}{fileURL}, true, c.maxRetries)
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return "", c.decodeError(http.MethodPost, path, data, err)
	}
	if _, err := parseHTTPURL(s); err != nil {
		return "", c.decodeError(http.MethodPost, path, nil, err)
	}
	return s, nil
}

// submit sends a non-idempotent task submission and returns data.taskId.
func (c *Client) submit(ctx context.Context, path string, body any) (string, error) {
	if err := c.waitSubmitSlot(ctx); err != nil {
		return "", err
	}
	data, err := c.do(ctx, http.MethodPost, path, nil, body, false, c.maxRetries)
	if err != nil {
		return "", err
	}
	var d struct {
		TaskID string `json:"taskId"`
	}
	if err := json.Unmarshal(data, &d); err != nil || d.TaskID == "" {
		if err == nil {
			err = errors.New("no taskId in response")
		}
		// The API said code 200 yet gave no usable id: the task probably exists.
		return "", errorf("%w: %w", ErrOutcomeUnknown, c.decodeError(http.MethodPost, path, data, err))
	}
	if err := validTaskID("taskId", d.TaskID); err != nil {
		return "", errorf("%w: %w", ErrOutcomeUnknown, c.decodeError(http.MethodPost, path, nil, err))
	}
	return d.TaskID, nil
}

// isNull reports an absent or null JSON value.
func isNull(data json.RawMessage) bool {
	d := bytes.TrimSpace(data)
	return len(d) == 0 || string(d) == "null"
}

// decodeError reports a code-200 response whose data is unusable.
func (c *Client) decodeError(method, path string, data []byte, err error) error {
	return &APIError{
		StatusCode: http.StatusOK,
		Code:       200,
		Method:     method,
		Path:       path,
		Message:    "unexpected data: " + err.Error(),
		Body:       redactBody(data, c.secretList(), len(data)),
	}
}

// envelope is the {code, msg, data} wrapper of every response.
type envelope struct {
	Code    *flexInt        `json:"code"`
	Msg     string          `json:"msg"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// do performs one API call with the retry policy for its kind (safe or submission), at most
// maxRetries retries, and returns the envelope's data on success.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, safe bool, maxRetries int) (json.RawMessage, error) {
	u := c.baseURL.JoinPath(path)
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, errorf("runway: encode %s body: %w", path, err)
		}
	}
	var rawBody any
	if payload != nil {
		rawBody = payload
	}
	kind := kindSubmit
	if safe {
		kind = kindRead
	}
	st := &callState{kind: kind, method: method, path: path, maxRetries: maxRetries}
	// A submission must never be re-sent once it may have reached the API. Whether an attempt
	// got a connection at all is the one fact that proves it did not: errors alone cannot tell a
	// client timeout while dialling from one while waiting for the answer.
	reqCtx := httptrace.WithClientTrace(withCallState(ctx, st), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { st.connected.Store(true) },
	})
	req, err := retryablehttp.NewRequestWithContext(reqCtx, method, u.String(), rawBody)
	if err != nil {
		return nil, errorf("runway: %s %s: %w", method, path, redactURLError(err))
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.api.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, c.finishError(ctx, method, path, safe, st.sent, err, st.lastErr)
	}
	return st.data, nil
}

func retryReason(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d code %d", ae.StatusCode, ae.Code)
	}
	if err == nil {
		return ""
	}
	return "transport error"
}

// finishError shapes the final error of a call: ctx errors wrapped (with the text of the last
// failed attempt, if any), transport errors without the URL, submission outcomes flagged when
// unknown.
func (c *Client) finishError(ctx context.Context, method, path string, safe, sent bool, err, lastErr error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		if !safe && ae.mayHaveCreated() {
			ae.MayExist = true
			return errorf("%w: %w", ErrOutcomeUnknown, ae)
		}
		return ae
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		after := ""
		if lastErr != nil && !errors.Is(lastErr, ctxErr) {
			after = " (after: " + redactURLError(lastErr).Error() + ")"
		}
		// A *url.Error means the ctx ended during an attempt; a bare ctx error means it ended
		// between attempts, when every earlier attempt was one a submission may retry.
		var ue *url.Error
		if !safe && errors.As(err, &ue) && sent {
			return errorf("runway: %s %s: %w: %w%s", method, path, ErrOutcomeUnknown, ctxErr, after)
		}
		return errorf("runway: %s %s: %w%s", method, path, ctxErr, after)
	}
	err = redactURLError(err)
	if !safe && sent {
		return errorf("runway: %s %s: %w (the task may have been created; check before resubmitting): %w", method, path, ErrOutcomeUnknown, err)
	}
	return errorf("runway: %s %s: %w", method, path, err)
}

// readEnvelope reads at most maxResponseBytes of the body and decodes the envelope. Success is
// HTTP 2xx and code 200; anything else is an *APIError.
func (c *Client) readEnvelope(method, path string, resp *http.Response) (json.RawMessage, error) {
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	apiErr := func(msg string, code int) *APIError {
		return &APIError{
			StatusCode: resp.StatusCode,
			Code:       code,
			Message:    msg,
			Method:     method,
			Path:       path,
			Body:       redactBody(raw, c.secretList(), maxResponseBytes),
			RetryAfter: retryAfterFrom(resp, c.now()),
		}
	}
	if readErr != nil {
		// A body cut mid-way is a transport error: safe calls retry it.
		return nil, fmt.Errorf("read response body: %w", readErr)
	}
	if len(raw) > maxResponseBytes {
		return nil, apiErr(fmt.Sprintf("response body larger than %d bytes", maxResponseBytes), 0)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Code == nil {
		msg := httpStatusText(resp.StatusCode)
		if resp.StatusCode/100 == 2 {
			msg = "response is not a JSON envelope"
		}
		return nil, apiErr(msg+": "+c.snippet(raw), 0)
	}
	msg := env.Msg
	if msg == "" {
		msg = env.Message
	}
	msg = string(c.redact([]byte(msg)))
	code := int(*env.Code)
	if resp.StatusCode/100 != 2 || code != 200 {
		return nil, apiErr(msg, code)
	}
	return env.Data, nil
}

// snippet returns the first bytes of an unusable body, printable and redacted.
func (c *Client) snippet(raw []byte) string {
	return printable(string(redactBody(raw, c.secretList(), len(raw))), maxErrorSnippet)
}

// redact removes the client's secrets (API key, HMAC keys) from bytes that are kept in errors.
func (c *Client) redact(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	out := bytes.Clone(b)
	for _, k := range c.secretList() {
		if k != "" {
			out = bytes.ReplaceAll(out, []byte(k), []byte(redactedMark))
		}
	}
	return out
}

// secretList returns the secrets the client keeps out of error texts.
func (c *Client) secretList() []string {
	if p := c.secrets.Load(); p != nil {
		return *p
	}
	return nil
}

// addSecrets adds keys to the client's secrets.
func (c *Client) addSecrets(keys ...string) {
	for {
		old := c.secrets.Load()
		next := append(append([]string(nil), *old...), keys...)
		if c.secrets.CompareAndSwap(old, &next) {
			return
		}
	}
}

// own returns a copy of a result (the bus shares its values between waiters) and its error,
// which keeps the client's secrets out of its text.
func (c *Client) own(r *Result) (*Result, error) {
	cp := *r
	err := cp.Err()
	if te, ok := err.(*TaskError); ok {
		te.secrets = c.secretList()
	}
	return &cp, err
}
