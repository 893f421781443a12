package runway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// storeTimeout bounds Done and Release, which run after the result budget may have ended.
const storeTimeout = 5 * time.Second

// claimMargin is added to the result budget to get the claim TTL. It exceeds Kie's first
// retry interval (1 minute), so a retry of a delivery whose func is still running finds the
// claim busy, while a claim orphaned by a crashed replica lapses before Kie's later retries.
const claimMargin = 2 * time.Minute

// retryAfterSeconds is the Retry-After sent with 503 answers.
const retryAfterSeconds = "60"

// errTaskNotFinished: with WithRefetch, the API does not report the task as finished yet.
var errTaskNotFinished = errors.New("runway: API does not report the task as finished")

// CallbackHandler is the http.Handler for Kie's callbacks: it checks the request, verifies the
// signature when a key is set, decodes both callback shapes, deduplicates by task id and runs
// the result func at most once per task. Mount it with mux.Handle; it is safe for concurrent
// use. Build it with NewCallbackHandler or Client.CallbackHandler.
//
// Responses, and what Kie does with them (Kie retries a failed delivery after 1, 5 and 15
// minutes): 200 accepted or already processed; 400 undecodable body; 401 signature missing,
// invalid or outside the timestamp window; 405 not POST; 413 body over the cap; 415 not JSON or
// any Content-Encoding; 500 the result func (or publishing, or the re-fetch) failed or
// panicked; 503 still processing past the budget, or busy on another replica. Every 4xx and
// 5xx is retried by Kie; bodies are generic and the precise reason is logged.
//
// Where the work runs: served by net/http over HTTP/1.x with net/http's own writer (not
// wrapped by a middleware), a delivery is processed on the request's goroutine; at the budget
// the 503 is written and flushed (with Content-Length and Connection: close) by a timer while
// ServeHTTP goes on until the work is over (the result func, then marking the task done in
// the Deduper). Otherwise (HTTP/2, a wrapped writer, a direct call) it runs on a goroutine
// of its own and ServeHTTP returns at the budget.
//
// Logging: a refused callback is logged at warn level with a short reason (method_not_allowed,
// content_encoding, content_type, body_too_large, read_body, undecodable, missing_signature,
// invalid_signature, timestamp_out_of_range), the task id once the body was decoded, the
// status and the peer address; never a key or a signature. So that a flood of bad requests
// cannot flood the log, each reason logs its first refusal at once and then at most one line
// per RejectLogInterval, measured on the handler's clock (WithClock); that line carries
// "suppressed", the number of refusals with that reason left out since the previous line.
// The other reasons are not affected. A count still pending when its interval is over is
// reported by the next refusal of any reason, in a line of its own ("runway: callback
// rejections suppressed", with reason and suppressed), so the tail of a flood that has
// stopped is counted as soon as anything else is refused. The handler runs nothing in the
// background: when nothing at all is refused after a flood, its tail stays unreported.
type CallbackHandler struct {
	callbackConfig           // the options, defaults filled in
	macs           []*macKey // prepared from WithHMACKey's keys

	// Set by Client.CallbackHandler.
	publish func(ctx context.Context, r *Result) error
	fetch   func(ctx context.Context, taskID string, aleph bool) (*Result, error)
	client  *Client // the client's journal and API, for Meta, removals and Reconcile

	rejects *logLimiter
	flights *flights  // shared by the handlers of one client that share its default deduper
	obs     *observer // nil without an observer
}

// RejectLogInterval is how often, at most, a CallbackHandler logs a refused callback per
// reason after the first one (see CallbackHandler).
const RejectLogInterval = 10 * time.Second

// flights are the deliveries being processed, by task id.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

func newFlights() *flights { return &flights{m: make(map[string]*flight)} }

// flight is one task id's processing on the handler (or the handlers sharing its flights);
// concurrent duplicates wait for it. Guarded by the flights' mu.
type flight struct {
	done    chan struct{} // made when a duplicate joins (the leader needs none); closed when settled
	settled bool
	status  int // the answer for every delivery; set when settled
}

// NewCallbackHandler returns a standalone handler; no API key is needed. Results reach only
// the WithResultFunc function, which is therefore required; use Client.CallbackHandler to also
// wake WaitForResult callers. It panics, naming the option and what to do, when an option
// holds a value that cannot work, when WithResultFunc is missing and when WithRefetch is given
// (there is no client to fetch with).
func NewCallbackHandler(opts ...CallbackOption) *CallbackHandler {
	h, errs := newCallbackHandler(nil, false, opts)
	if h.refetch {
		errs = append(errs, errors.New("WithRefetch: a standalone handler has no client to fetch with; use Client.CallbackHandler(WithRefetch()), or drop WithRefetch"))
	}
	if h.fn == nil {
		errs = append(errs, errors.New("no WithResultFunc: a standalone handler would drop every result; pass WithResultFunc(fn), or use Client.CallbackHandler to wake WaitForResult callers"))
	}
	if len(errs) > 0 {
		panic("runway: NewCallbackHandler: " + errors.Join(errs...).Error())
	}
	h.logStart()
	return h
}

// CallbackHandler returns a handler wired to this client: every accepted result is also
// published on the client's ResultBus, which wakes its WaitForResult callers (on every replica
// when the bus is shared) and keeps the result for a WaitForResult that starts later. Its
// logger defaults to the client's. WithResultFunc is optional here.
//
// Mounting it more than once is safe: the handlers of one client that do not set WithDeduper
// share one in-memory deduper (created with the first handler's clock) and one set of
// deliveries in flight, so a task delivered to two mounts, even at once, runs the result func
// once, exactly as on a single handler; a duplicate waits for the first delivery's outcome.
// Each handler keeps its own result func, keys and limits. A handler given WithDeduper uses
// that store alone.
//
// The shared deduper's expiry runs on the clock of the first handler built without
// WithDeduper: a later handler's WithClock still governs its own timestamp window and log
// rate limit, but not when a task id it shares is forgotten. Give every handler of a client
// the same clock, or a handler whose clock differs a WithDeduper of its own.
//
// It panics, naming the option and what to do, when an option holds a value that cannot work.
func (c *Client) CallbackHandler(opts ...CallbackOption) *CallbackHandler {
	h, errs := newCallbackHandler(c.logger, true, opts)
	if len(errs) > 0 {
		panic("runway: Client.CallbackHandler: " + errors.Join(errs...).Error())
	}
	c.addSecrets(h.keys...)
	if h.dedupe == nil {
		c.cbOnce.Do(func() {
			c.cbDedupe = newMemoryDeduper(DefaultDedupeTTL, maxMemoryDedupeKeys, h.now)
			c.cbFlights = newFlights()
		})
		h.dedupe, h.flights = c.cbDedupe, c.cbFlights
	}
	h.publish = c.bus.Publish
	h.fetch = c.fetchResult
	h.logStart()
	if h.obs == nil {
		h.obs = c.obs
	}
	h.client = c
	return h
}

// fetchResult asks the API for a task's outcome (WithRefetch).
func (c *Client) fetchResult(ctx context.Context, taskID string, aleph bool) (*Result, error) {
	t, err := c.getTask(ctx, taskID, aleph || c.aleph.has(taskID), c.maxRetries)
	if err != nil {
		return nil, err
	}
	if t.ID != taskID {
		return nil, fmt.Errorf("runway: API answered for task %s instead of %s", printable(t.ID, maxTaskIDLen), taskID)
	}
	if !t.State.Terminal() {
		return nil, fmt.Errorf("%w (state %s)", errTaskNotFinished, printable(string(t.State), 32))
	}
	r := t.Result()
	r.Source = SourceCallback
	return r, nil
}

// newCallbackHandler applies opts and fills in the defaults, except the deduper when none was
// given and the handler is a client's (forClient): that one is the client's, shared. It
// returns the options' errors.
func newCallbackHandler(clientLog *slog.Logger, forClient bool, opts []CallbackOption) (*CallbackHandler, []error) {
	cfg := callbackConfig{
		tolerance:     DefaultCallbackTolerance,
		maxBody:       DefaultMaxCallbackBytes,
		now:           time.Now,
		resultTimeout: DefaultResultTimeout,
		log:           clientLog,
	}
	var errs []error
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	h := &CallbackHandler{
		callbackConfig: cfg,
		macs:           newMACKeys(cfg.keys),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.rejects = newLogLimiter(RejectLogInterval, h.now)
	if !forClient && h.dedupe == nil {
		h.dedupe = newMemoryDeduper(DefaultDedupeTTL, maxMemoryDedupeKeys, h.now)
	}
	if h.flights == nil {
		h.flights = newFlights()
	}
	h.obs = newObserver(cfg.observer, h.log, h.now)
	return h, errs
}

// logStart reports, once per handler, configuration that cannot work as intended.
func (h *CallbackHandler) logStart() {
	if h.resultTimeout >= kieCallbackTimeout {
		h.log.Error("runway: callback result timeout is not below Kie's 15 s delivery timeout; Kie gives up before the handler answers",
			slog.Duration("result_timeout", h.resultTimeout))
	}
	if !h.keysSet {
		h.log.Error("runway: callback signature verification is off (no WithHMACKey); unsigned callbacks are accepted")
	}
}

// ServeHTTP implements http.Handler.
func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, r = h.obs.callbackStart(w, r)
	defer h.obs.callbackEnd(w, r)
	res, aleph, status := h.admit(w, r)
	if status != 0 {
		respond(w, status)
		return
	}
	id := res.TaskID
	h.obs.callbackTask(w, id)
	f, leader := h.join(id)
	if !leader {
		respond(w, h.await(r.Context(), f, id))
		return
	}
	// The work outlives this request when it overruns the budget: keep the request's values,
	// not its cancellation.
	base := context.WithoutCancel(r.Context())
	ctx, cancel := context.WithTimeout(base, h.resultTimeout)
	token, acquired := h.claimFor(ctx, f, id)
	if !acquired {
		cancel()
		respond(w, f.status) // settled by claimFor, on this goroutine
		return
	}
	if answersEarly(w, r) {
		h.serveInline(w, r, base, ctx, cancel, f, res, aleph, token)
		return
	}
	go h.work(base, ctx, cancel, f, res, aleph, token)
	respond(w, h.awaitLead(r.Context(), f, id, ctx.Done()))
}

// answersEarly reports whether an answer written and flushed on w reaches the client while
// ServeHTTP goes on, which lets the work run on the request's goroutine (serveInline). That
// holds for net/http's own HTTP/1.x writer, reached directly or through the observer's
// writer only: any other writer may hold the answer back (a middleware that buffers it, or
// compresses it into a chunked body that ends only when ServeHTTP returns, or flushes the
// writer it wraps without its own buffer, committing a 200), HTTP/2 ends a stream only when
// the handler returns, and a direct caller (a test) expects ServeHTTP itself to return at
// the budget. Then the work runs on a goroutine of its own (work).
func answersEarly(w http.ResponseWriter, r *http.Request) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	if cw, ok := w.(*callbackWriter); ok {
		w = cw.ResponseWriter
	}
	switch w.(type) {
	case sendsFlushed:
		return true
	case http.Flusher:
		t := reflect.TypeOf(w)
		return t.Kind() == reflect.Pointer && t.Elem().Name() == "response" && t.Elem().PkgPath() == "net/http"
	}
	return false
}

// sendsFlushed marks a writer that, like net/http's HTTP/1.x one, sends what it has when
// flushed. Only this package's tests implement it (the method is unexported).
type sendsFlushed interface {
	http.Flusher
	sendsFlushed()
}

// serveInline processes a claimed delivery on the request's goroutine. Should the budget (the
// deadline of ctx, which began before the claim) end first, a timer answers 503 at that
// moment, flushed and complete (respondEarly), and the work goes on; its own answer is then
// dropped. Whichever of the two answers first does so under the answer's mutex, and the other
// then leaves w alone: w is never used by both, nor after ServeHTTP returned, a panic
// escaping the work included.
func (h *CallbackHandler) serveInline(w http.ResponseWriter, r *http.Request, base, ctx context.Context, cancel context.CancelFunc, f *flight, res *Result, aleph bool, token string) {
	defer cancel()
	a := &inlineAnswer{h: h, w: w, r: r, f: f, taskID: res.TaskID}
	// A timer of its own rather than context.AfterFunc on ctx: the same instant for four
	// allocations fewer (the after-func context, its closure, the parent's children map).
	deadline, _ := ctx.Deadline()
	t := time.AfterFunc(time.Until(deadline), a.budgetEnded)
	status := 0 // 0 while the work runs, and when a panic escapes it
	defer func() {
		t.Stop()
		a.mu.Lock()
		defer a.mu.Unlock()
		if !a.answered {
			a.answered = true // and a timer that fires now leaves w alone
			if status != 0 {
				respond(w, status)
			} else {
				h.obs.callbackAborted(w) // a panic: net/http drops the connection unanswered
			}
		}
	}()
	status = h.process(base, ctx, f, res, aleph, token)
}

// inlineAnswer is who answers a delivery processed on the request's goroutine: the work or,
// over budget, the budget's timer (see serveInline).
type inlineAnswer struct {
	h        *CallbackHandler
	w        http.ResponseWriter
	r        *http.Request
	f        *flight
	taskID   string
	mu       sync.Mutex
	answered bool
}

// budgetEnded answers 503 when the budget ends before the work, unless the work's outcome is
// in (the request's goroutine answers with it).
func (a *inlineAnswer) budgetEnded() {
	a.mu.Lock()
	defer a.mu.Unlock()
	fl := a.h.flights
	fl.mu.Lock()
	settled := a.f.settled
	fl.mu.Unlock()
	if a.answered || settled {
		return
	}
	a.answered = true
	respondEarly(a.w, http.StatusServiceUnavailable)
	a.report()
}

// report observes and logs the early answer. It runs on the timer's goroutine, where
// net/http's recovery does not reach: a panicking logger must not take the process down (the
// answer is already written).
func (a *inlineAnswer) report() {
	defer func() { _ = recover() }()
	a.h.obs.callbackEnd(a.w, a.r)
	a.h.overBudget(a.taskID)
}

// respondEarly answers status while ServeHTTP goes on: with the body's length declared and the
// answer flushed, the client has all of it at once; the connection closes after it, so that
// no other request of the client's waits behind the work.
func respondEarly(w http.ResponseWriter, status int) {
	hdr := w.Header()
	hdr["Content-Length"] = []string{strconv.Itoa(len(statusBody(status)))}
	hdr["Connection"] = []string{"close"}
	respond(w, status)
	_ = http.NewResponseController(w).Flush()
}

// admit runs every check that needs no state: method, encoding, type, size, decoding, task id
// and signature. It returns the decoded result, or the status to refuse the request with.
func (h *CallbackHandler) admit(w http.ResponseWriter, r *http.Request) (*Result, bool, int) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, false, h.reject(r, http.StatusMethodNotAllowed, "method_not_allowed", "", slog.String("method", printable(r.Method, 16)))
	}
	if enc := r.Header.Values("Content-Encoding"); len(enc) > 0 {
		return nil, false, h.reject(r, http.StatusUnsupportedMediaType, "content_encoding", "", slog.String("content_encoding", printable(strings.Join(enc, ","), 64)))
	}
	if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
		return nil, false, h.reject(r, http.StatusUnsupportedMediaType, "content_type", "", slog.String("error", err.Error()), slog.String("content_type", printable(r.Header.Get("Content-Type"), 64)))
	}
	if r.ContentLength > h.maxBody {
		return nil, false, h.reject(r, http.StatusRequestEntityTooLarge, "body_too_large", "", slog.Int64("content_length", r.ContentLength), slog.Int64("limit", h.maxBody))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, false, h.reject(r, http.StatusRequestEntityTooLarge, "body_too_large", "", slog.Int64("limit", h.maxBody))
		}
		return nil, false, h.reject(r, http.StatusBadRequest, "read_body", "", slog.String("error", printable(err.Error(), 128)))
	}
	res, aleph, err := parseCallback(body)
	if err != nil {
		return nil, false, h.reject(r, http.StatusBadRequest, "undecodable", "", slog.String("error", err.Error()))
	}
	if err := h.verify(r, res.TaskID); err != nil {
		return nil, false, h.reject(r, http.StatusUnauthorized, signatureReason(err), res.TaskID, slog.String("error", err.Error()))
	}
	return res, aleph, 0
}

// checkJSONType accepts application/json with any case and parameters, except a charset other
// than UTF-8 (JSON is UTF-8).
func checkJSONType(ct string) error {
	if ct == "application/json" {
		return nil // the common case, without ParseMediaType's parameter map
	}
	if ct == "" {
		return errors.New("missing content type")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errors.New("content type is not application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return errors.New("charset is not utf-8")
	}
	return nil
}

// verify checks the signature headers when a key is configured.
func (h *CallbackHandler) verify(r *http.Request, taskID string) error {
	if !h.keysSet {
		return nil // logged at construction
	}
	ts, sig := r.Header.Get(HeaderWebhookTimestamp), r.Header.Get(HeaderWebhookSignature)
	if ts == "" || sig == "" {
		return ErrMissingSignature
	}
	if err := checkTimestamp(ts, h.now(), h.tolerance); err != nil {
		return err
	}
	return verifyMACKeys(h.macs, taskID, ts, sig)
}

// join returns the in-flight processing of taskID, creating it (leader true) if there is none.
func (h *CallbackHandler) join(taskID string) (f *flight, leader bool) {
	fl := h.flights
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if f := fl.m[taskID]; f != nil {
		if f.done == nil {
			f.done = make(chan struct{})
		}
		return f, false
	}
	f = &flight{}
	fl.m[taskID] = f
	return f, true
}

// finish records the answer for f's waiters and ends the flight.
func (h *CallbackHandler) finish(taskID string, f *flight, status int) {
	fl := h.flights
	fl.mu.Lock()
	delete(fl.m, taskID)
	f.status, f.settled = status, true
	if f.done != nil {
		close(f.done)
	}
	fl.mu.Unlock()
}

// claimFor claims the task id for the flight f. When the claim is not acquired (the task was
// processed before or is busy elsewhere, or the Deduper failed or panicked) it settles f with
// the status to answer and returns false.
func (h *CallbackHandler) claimFor(ctx context.Context, f *flight, id string) (token string, acquired bool) {
	status := http.StatusServiceUnavailable
	defer func() {
		// A panicking Deduper must not leave the flight open: later deliveries would wait on
		// it forever. Settled first, so that not even a panicking logger can.
		p := recover()
		if !acquired {
			h.finish(id, f, status)
		}
		if p != nil {
			h.log.Warn("runway: callback dedupe claim panicked", slog.String("task_id", id), slog.String("panic", printable(fmt.Sprint(p), 256)))
		}
	}()
	st, token, err := h.dedupe.Claim(ctx, id, h.resultTimeout+claimMargin)
	switch {
	case err != nil:
		h.log.Warn("runway: callback dedupe claim failed", slog.String("task_id", id), slog.String("error", err.Error()))
	case st == ClaimDone:
		h.log.LogAttrs(ctx, slog.LevelDebug, "runway: duplicate callback for a processed task", slog.String("task_id", id))
		status = http.StatusOK
	case st == ClaimBusy:
		h.log.LogAttrs(ctx, slog.LevelDebug, "runway: callback task is being processed elsewhere", slog.String("task_id", id))
	case st == ClaimAcquired:
		return token, true
	default:
		h.log.Error("runway: callback dedupe claim returned an unknown status", slog.String("task_id", id), slog.Int("status", int(st)))
	}
	return "", false
}

// work is process on a goroutine of its own (see answersEarly). It settles the flight, and
// only then ends the budget: awaitLead takes the budget's end as over budget only if the
// flight is not settled yet.
func (h *CallbackHandler) work(base, ctx context.Context, cancel context.CancelFunc, f *flight, res *Result, aleph bool, token string) {
	defer cancel()
	h.process(base, ctx, f, res, aleph, token)
}

// process runs a claimed delivery to the end, however long the result func takes, then marks
// the claim done or releases it and settles the flight with the status to answer, whatever
// happens (a Deduper that panics in Done or Release included: on work's goroutine net/http's
// recovery does not reach, and on the request's the flight must be settled all the same).
// ctx is the budget, derived from base, the request's values without its cancellation.
func (h *CallbackHandler) process(base, ctx context.Context, f *flight, res *Result, aleph bool, token string) (status int) {
	id := res.TaskID
	status = http.StatusInternalServerError
	defer func() {
		p := recover()
		h.finish(id, f, status) // first: not even a panicking logger may leave the flight open
		if p != nil {
			h.log.Warn("runway: callback dedupe panicked", slog.String("task_id", id), slog.String("panic", printable(fmt.Sprint(p), 256)))
		}
	}()
	err := h.deliver(ctx, res, aleph, false)
	h.obs.callbackResult(ctx)
	sctx, scancel := h.storeContext(base)
	defer scancel()
	if err != nil {
		// Give the task id back so that Kie's retry can claim it. The answer is 503 while the
		// API does not report the task as finished, else 500.
		if errors.Is(err, errTaskNotFinished) {
			status = http.StatusServiceUnavailable
		}
		h.logFailure("runway: callback processing failed; released for Kie's retry", id, err)
		h.endClaim(sctx, "callback", id, token, false)
		return status
	}
	// The work is done: answer 200 whatever the store says, which stops Kie's retries.
	// Without the done marker a later redelivery could run the func again, hence the log.
	status = http.StatusOK
	h.endClaim(sctx, "callback", id, token, true)
	h.forget(sctx, id)
	h.log.LogAttrs(ctx, slog.LevelDebug, "runway: callback processed", slog.String("task_id", id))
	return status
}

// endClaim marks the claim on id done after a delivery, or gives it back after a failed one so
// that a retry can claim it. A store error is logged (who names the path: "callback",
// "reconcile"), not returned: the delivery's outcome stands either way.
func (h *CallbackHandler) endClaim(sctx context.Context, who, id, token string, delivered bool) {
	if !delivered {
		if err := h.dedupe.Release(sctx, id, token); err != nil {
			h.logFailure("runway: "+who+" dedupe release failed", id, err)
		}
		return
	}
	if err := h.dedupe.Done(sctx, id, token); err != nil {
		h.logFailure("runway: "+who+" dedupe done failed", id, err)
	}
}

// logFailure logs msg at warn level with the task id and the error.
func (h *CallbackHandler) logFailure(msg, id string, err error) {
	h.log.Warn(msg, slog.String("task_id", id), slog.String("error", err.Error()))
}

// storeContext returns the context for Done and Release, which run after the budget may have
// ended: base with its own storeTimeout, or base itself for the memory deduper, which
// neither blocks nor reads its context (a timer per delivery saved).
func (h *CallbackHandler) storeContext(base context.Context) (context.Context, context.CancelFunc) {
	if _, ok := h.dedupe.(*memoryDeduper); ok {
		return base, func() {}
	}
	return context.WithTimeout(base, storeTimeout)
}

// deliver re-fetches the result if asked (not for a polled one), adds its journaled Meta,
// publishes it and runs the result func. A panic anywhere in it becomes an error: this may run
// on a goroutine of its own, where net/http's recovery does not reach.
func (h *CallbackHandler) deliver(ctx context.Context, res *Result, aleph, polled bool) (err error) {
	defer h.obs.processed(ctx, h.obs.processing(ctx), &res, &err)
	id := res.TaskID
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %s", printable(fmt.Sprint(p), 256))
			h.log.Warn("runway: callback processing panicked", slog.String("task_id", id),
				slog.String("panic", printable(fmt.Sprint(p), 256)), slog.String("stack", string(debug.Stack())))
		}
	}()
	if h.refetch && !polled { // only on a client's handler: NewCallbackHandler refuses WithRefetch
		if res, err = h.fetch(ctx, id, aleph); err != nil {
			return fmt.Errorf("refetch: %w", err)
		}
	}
	h.addMeta(ctx, res)
	if h.publish != nil {
		if err := h.publish(ctx, res); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	if h.fn != nil {
		cp := *res
		// The func's r.Err() keeps the keys out of its text.
		cp.secrets = h.keys
		if h.client != nil {
			cp.secrets = h.client.secretList()
		}
		if err := h.fn(ctx, &cp); err != nil {
			return fmt.Errorf("result func: %w", err)
		}
	}
	return nil
}

// awaitLead answers the leader's delivery: the flight's outcome, or 503 when the budget
// passes first (the work goes on; a retry finds the task busy or done). budget is closed when
// the budget ends or after the flight is settled (see work).
func (h *CallbackHandler) awaitLead(ctx context.Context, f *flight, taskID string, budget <-chan struct{}) int {
	select {
	case <-budget:
		h.flights.mu.Lock()
		settled, status := f.settled, f.status
		h.flights.mu.Unlock()
		if settled {
			return status
		}
		return h.overBudget(taskID)
	case <-ctx.Done():
		return http.StatusServiceUnavailable
	}
}

// await answers a duplicate delivery that joined a running flight: its outcome, or 503 when
// the duplicate's own budget passes first.
func (h *CallbackHandler) await(ctx context.Context, f *flight, taskID string) int {
	t := time.NewTimer(h.resultTimeout)
	defer t.Stop()
	select {
	case <-f.done:
		return f.status
	case <-t.C:
		return h.overBudget(taskID)
	case <-ctx.Done():
		return http.StatusServiceUnavailable
	}
}

// overBudget logs an answer given while the work still runs.
func (h *CallbackHandler) overBudget(taskID string) int {
	h.log.Warn("runway: callback processing exceeded its budget; answered 503, still running",
		slog.String("task_id", taskID), slog.Duration("budget", h.resultTimeout))
	return http.StatusServiceUnavailable
}

// reject logs why a request was refused, rate limited per reason (see CallbackHandler), and
// returns status. reason is one of a fixed set of short names; taskID is "" until the body
// was decoded (the decoder refuses ids that are not short and printable).
func (h *CallbackHandler) reject(r *http.Request, status int, reason, taskID string, attrs ...slog.Attr) int {
	ok, suppressed := h.rejects.allow(reason)
	if h.rejects.hasPending() {
		for _, p := range h.rejects.due() {
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "runway: callback rejections suppressed",
				slog.String("reason", p.key), slog.Int("suppressed", p.suppressed))
		}
	}
	if !ok {
		return status
	}
	all := make([]slog.Attr, 0, len(attrs)+5)
	all = append(all, slog.String("reason", reason))
	if taskID != "" {
		all = append(all, slog.String("task_id", taskID))
	}
	all = append(all, attrs...)
	all = append(all, slog.Int("status", status), slog.String("remote", printable(r.RemoteAddr, 64)))
	if suppressed > 0 {
		all = append(all, slog.Int("suppressed", suppressed))
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "runway: callback rejected", all...)
	return status
}

// signatureReason names a signature refusal for the log.
func signatureReason(err error) string {
	switch {
	case errors.Is(err, ErrMissingSignature):
		return "missing_signature"
	case errors.Is(err, ErrTimestampOutOfRange):
		return "timestamp_out_of_range"
	default:
		return "invalid_signature"
	}
}

// logLimiter lets through the first event per key at once, then at most one per interval,
// and counts the ones it held back. Keys come from a small fixed set.
type logLimiter struct {
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	keys    map[string]*limitState
	pending atomic.Int32 // keys with a suppressed count not reported yet
}

type limitState struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(interval time.Duration, now func() time.Time) *logLimiter {
	return &logLimiter{interval: interval, now: now, keys: make(map[string]*limitState)}
}

// allow reports whether an event for key may be logged now and, if so, how many events for
// key were held back since the last one logged.
func (l *logLimiter) allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[key]
	if st == nil {
		l.keys[key] = &limitState{last: now}
		return true, 0
	}
	if d := now.Sub(st.last); d >= 0 && d < l.interval {
		if st.suppressed == 0 {
			l.pending.Add(1)
		}
		st.suppressed++
		return false, 0
	}
	suppressed = st.suppressed
	if suppressed > 0 {
		l.pending.Add(-1)
	}
	st.last, st.suppressed = now, 0
	return true, suppressed
}

// hasPending reports, without the lock, whether some key has a count not reported yet.
func (l *logLimiter) hasPending() bool { return l.pending.Load() > 0 }

// pendingCount is a key's count of events held back, due to be reported.
type pendingCount struct {
	key        string
	suppressed int
}

// due returns, and counts as logged now, the keys whose held-back events have waited a whole
// interval since their last line: the flood stopped, and nothing of that key came to carry
// the count.
func (l *logLimiter) due() []pendingCount {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pendingCount
	for k, st := range l.keys {
		if d := now.Sub(st.last); st.suppressed > 0 && (d < 0 || d >= l.interval) {
			out = append(out, pendingCount{key: k, suppressed: st.suppressed})
			st.last, st.suppressed = now, 0
			l.pending.Add(-1)
		}
	}
	slices.SortFunc(out, func(a, b pendingCount) int { return strings.Compare(a.key, b.key) })
	return out
}

// respond writes a short generic answer; the reason is only logged.
func respond(w http.ResponseWriter, status int) {
	// The header values share one allocation; the keys are already canonical.
	hdr := w.Header()
	vals := []string{"text/plain; charset=utf-8", "nosniff", retryAfterSeconds}
	if status == http.StatusServiceUnavailable {
		hdr["Retry-After"] = vals[2:3:3]
	}
	hdr["Content-Type"] = vals[0:1:1]
	hdr["X-Content-Type-Options"] = vals[1:2:2]
	w.WriteHeader(status)
	_, _ = w.Write(statusBody(status))
}

// statusBodies are the answers' bodies, built once.
var statusBodies = func() map[int][]byte {
	m := make(map[int][]byte)
	for _, st := range []int{200, 400, 401, 405, 413, 415, 500, 503} {
		m[st] = []byte(strings.ToLower(http.StatusText(st)) + "\n")
	}
	return m
}()

// statusBody is the body answered with status: its lower-case text.
func statusBody(status int) []byte {
	if b, ok := statusBodies[status]; ok {
		return b
	}
	return []byte(strings.ToLower(http.StatusText(status)) + "\n")
}

var _ http.Handler = (*CallbackHandler)(nil)
