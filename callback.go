package runway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
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
type CallbackHandler struct {
	callbackConfig           // the options, defaults filled in
	macs           []*macKey // prepared from WithHMACKey's non-empty keys

	// Set by Client.CallbackHandler.
	publish func(ctx context.Context, r *Result) error
	fetch   func(ctx context.Context, taskID string, aleph bool) (*Result, error)
	client  *Client // the client's journal and API, for Meta, removals and Reconcile

	unsignedOnce sync.Once

	mu       sync.Mutex
	inflight map[string]*flight // deliveries being processed by this handler, by task id
}

// flight is one task id's processing on this handler; concurrent duplicates wait for it.
// Guarded by the handler's mu.
type flight struct {
	done    chan struct{} // made when a duplicate joins (the leader needs none); closed when settled
	settled bool
	status  int // the answer for every delivery; set when settled
}

// NewCallbackHandler returns a standalone handler; no API key is needed. Results reach only
// the WithResultFunc function; use Client.CallbackHandler to also wake WaitForResult callers.
func NewCallbackHandler(opts ...CallbackOption) *CallbackHandler {
	return newCallbackHandler(nil, opts)
}

// CallbackHandler returns a handler wired to this client: every accepted result is also
// published on the client's ResultBus, which wakes its WaitForResult callers (on every replica
// when the bus is shared) and keeps the result for a WaitForResult that starts later. Its
// logger defaults to the client's. Mount one handler per client.
func (c *Client) CallbackHandler(opts ...CallbackOption) *CallbackHandler {
	h := newCallbackHandler(c.logger, opts)
	h.publish = c.bus.Publish
	h.fetch = c.fetchResult
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

func newCallbackHandler(logger *slog.Logger, opts []CallbackOption) *CallbackHandler {
	var cfg callbackConfig
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&cfg)
		}
	}
	h := &CallbackHandler{
		callbackConfig: cfg,
		macs:           newMACKeys(cfg.keys),
		inflight:       make(map[string]*flight),
	}
	if h.log == nil {
		h.log = logger
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.tolerance <= 0 {
		h.tolerance = DefaultCallbackTolerance
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxCallbackBytes
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.resultTimeout <= 0 {
		h.resultTimeout = DefaultResultTimeout
	}
	if h.dedupe == nil {
		h.dedupe = newMemoryDeduper(DefaultDedupeTTL, maxMemoryDedupeKeys, h.now)
	}
	if h.resultTimeout >= kieCallbackTimeout {
		h.log.Warn("runway: callback result timeout is not below Kie's 15 s delivery timeout",
			slog.Duration("result_timeout", h.resultTimeout))
	}
	if h.keysSet && len(h.macs) == 0 {
		h.log.Error("runway: WithHMACKey was given no non-empty key; every callback will be refused")
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, aleph, status := h.admit(w, r)
	if status != 0 {
		respond(w, status)
		return
	}
	f, leader := h.join(res.TaskID)
	if !leader {
		respond(w, h.await(r.Context(), f, res.TaskID))
		return
	}
	budget := h.lead(r.Context(), f, res, aleph)
	if budget == nil {
		respond(w, f.status) // settled by lead, on this goroutine
		return
	}
	respond(w, h.awaitLead(r.Context(), f, res.TaskID, budget))
}

// admit runs every check that needs no state: method, encoding, type, size, decoding, task id
// and signature. It returns the decoded result, or the status to refuse the request with.
func (h *CallbackHandler) admit(w http.ResponseWriter, r *http.Request) (*Result, bool, int) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, false, h.reject(r, http.StatusMethodNotAllowed, "method not allowed", slog.String("method", printable(r.Method, 16)))
	}
	if enc := r.Header.Values("Content-Encoding"); len(enc) > 0 {
		return nil, false, h.reject(r, http.StatusUnsupportedMediaType, "content encoding not accepted", slog.String("content_encoding", printable(strings.Join(enc, ","), 64)))
	}
	if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
		return nil, false, h.reject(r, http.StatusUnsupportedMediaType, err.Error(), slog.String("content_type", printable(r.Header.Get("Content-Type"), 64)))
	}
	if r.ContentLength > h.maxBody {
		return nil, false, h.reject(r, http.StatusRequestEntityTooLarge, "body too large", slog.Int64("content_length", r.ContentLength), slog.Int64("limit", h.maxBody))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, false, h.reject(r, http.StatusRequestEntityTooLarge, "body too large", slog.Int64("limit", h.maxBody))
		}
		return nil, false, h.reject(r, http.StatusBadRequest, "reading body failed", slog.String("reason", printable(err.Error(), 128)))
	}
	res, aleph, err := parseCallback(body)
	if err != nil {
		return nil, false, h.reject(r, http.StatusBadRequest, "undecodable callback", slog.String("reason", err.Error()))
	}
	if err := h.verify(r, res.TaskID); err != nil {
		return nil, false, h.reject(r, http.StatusUnauthorized, "callback signature rejected",
			slog.String("task_id", res.TaskID), slog.String("reason", err.Error()))
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
		h.unsignedOnce.Do(func() {
			h.log.Warn("runway: callback signature verification is off (no WithHMACKey); unsigned callbacks are accepted")
		})
		return nil
	}
	if len(h.macs) == 0 {
		return errors.New("no usable HMAC key configured")
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
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.inflight[taskID]; f != nil {
		if f.done == nil {
			f.done = make(chan struct{})
		}
		return f, false
	}
	f = &flight{}
	h.inflight[taskID] = f
	return f, true
}

// finish records the answer for f's waiters and ends the flight.
func (h *CallbackHandler) finish(taskID string, f *flight, status int) {
	h.mu.Lock()
	delete(h.inflight, taskID)
	f.status, f.settled = status, true
	if f.done != nil {
		close(f.done)
	}
	h.mu.Unlock()
}

// lead claims the task id and starts processing, or settles the flight at once when the task
// was processed before or is busy elsewhere. While the work runs it returns a channel closed
// when the budget ends or after the flight is settled, whichever is first (nil when the
// flight is already settled): awaitLead needs no timer of its own.
func (h *CallbackHandler) lead(reqCtx context.Context, f *flight, res *Result, aleph bool) (budget <-chan struct{}) {
	id := res.TaskID
	// The work outlives this request when it overruns the budget: keep the request's values,
	// not its cancellation.
	base := context.WithoutCancel(reqCtx)
	ctx, cancel := context.WithTimeout(base, h.resultTimeout)
	status, started := http.StatusServiceUnavailable, false
	defer func() {
		// A panicking Deduper must not leave the flight open: later deliveries would wait on
		// it forever.
		if p := recover(); p != nil {
			h.log.Error("runway: callback dedupe claim panicked", slog.String("task_id", id), slog.String("panic", printable(fmt.Sprint(p), 256)))
		}
		if !started {
			cancel()
			h.finish(id, f, status)
		}
	}()
	st, token, err := h.dedupe.Claim(ctx, id, h.resultTimeout+claimMargin)
	switch {
	case err != nil:
		h.log.Error("runway: callback dedupe claim failed", slog.String("task_id", id), slog.String("reason", err.Error()))
	case st == ClaimDone:
		h.log.LogAttrs(ctx, slog.LevelDebug, "runway: duplicate callback for a processed task", slog.String("task_id", id))
		status = http.StatusOK
	case st == ClaimBusy:
		h.log.Warn("runway: callback task is being processed elsewhere", slog.String("task_id", id))
	case st == ClaimAcquired:
		started = true
		go h.work(base, ctx, cancel, f, res, aleph, token)
		return ctx.Done()
	default:
		h.log.Error("runway: callback dedupe claim returned an unknown status", slog.String("task_id", id), slog.Int("status", int(st)))
	}
	return nil
}

// work processes a claimed task to the end, however long the result func takes, then marks
// the claim done or releases it and settles the flight, whatever happens (a Deduper that
// panics in Done or Release included: this goroutine is outside net/http's recovery). ctx is
// the budget, derived from base, the request's values without its cancellation.
func (h *CallbackHandler) work(base, ctx context.Context, cancel context.CancelFunc, f *flight, res *Result, aleph bool, token string) {
	id := res.TaskID
	status := http.StatusInternalServerError
	defer h.settle(id, f, cancel, &status)
	err := h.deliver(ctx, res, aleph, false)
	sctx, scancel := h.storeContext(base)
	defer scancel()
	if err != nil {
		status = h.release(sctx, id, token, err)
		return
	}
	// The work is done: answer 200 whatever the store says, which stops Kie's retries.
	// Without the done marker a later redelivery could run the func again, hence the log.
	status = http.StatusOK
	if derr := h.dedupe.Done(sctx, id, token); derr != nil {
		h.logFailure("runway: callback dedupe done failed", id, derr)
	}
	h.forget(sctx, id)
	if h.log.Enabled(ctx, slog.LevelDebug) {
		h.logProcessed(ctx, id)
	}
}

// The helpers below keep the logging out of work's frame: work runs on a new goroutine,
// whose stack starts small, and a smaller frame lets the whole delivery run without growing
// (and copying) it.

// settle ends work: it logs a panic from the Deduper, settles the flight with status and only
// then cancels the budget (awaitLead takes the budget's end as over budget only if the flight
// is not settled yet).
func (h *CallbackHandler) settle(id string, f *flight, cancel context.CancelFunc, status *int) {
	if p := recover(); p != nil {
		h.log.Error("runway: callback dedupe panicked", slog.String("task_id", id), slog.String("panic", printable(fmt.Sprint(p), 256)))
	}
	h.finish(id, f, *status)
	cancel()
}

// release gives the task id back after a failed delivery, so Kie's retry can claim it, and
// returns the answer: 503 while the API does not report the task as finished, else 500.
func (h *CallbackHandler) release(ctx context.Context, id, token string, err error) int {
	status := http.StatusInternalServerError
	if errors.Is(err, errTaskNotFinished) {
		status = http.StatusServiceUnavailable
	}
	h.logFailure("runway: callback processing failed; released for Kie's retry", id, err)
	if rerr := h.dedupe.Release(ctx, id, token); rerr != nil {
		h.logFailure("runway: callback dedupe release failed", id, rerr)
	}
	return status
}

// logFailure logs msg at error level with the task id and the reason.
func (h *CallbackHandler) logFailure(msg, id string, err error) {
	h.log.Error(msg, slog.String("task_id", id), slog.String("reason", err.Error()))
}

// logProcessed logs a processed task at debug level.
func (h *CallbackHandler) logProcessed(ctx context.Context, id string) {
	h.log.LogAttrs(ctx, slog.LevelDebug, "runway: callback processed", slog.String("task_id", id))
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
// publishes it and runs the result func. A panic anywhere in it becomes an error: this runs
// on its own goroutine, where net/http's recovery does not reach.
func (h *CallbackHandler) deliver(ctx context.Context, res *Result, aleph, polled bool) (err error) {
	id := res.TaskID
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %s", printable(fmt.Sprint(p), 256))
			h.log.Error("runway: callback processing panicked", slog.String("task_id", id),
				slog.String("panic", printable(fmt.Sprint(p), 256)), slog.String("stack", string(debug.Stack())))
		}
	}()
	if h.refetch && !polled {
		if h.fetch == nil {
			return errors.New("WithRefetch needs Client.CallbackHandler; this handler cannot fetch")
		}
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
		if err := h.fn(ctx, &cp); err != nil {
			return fmt.Errorf("result func: %w", err)
		}
	}
	return nil
}

// awaitLead answers the leader's delivery: the flight's outcome, or 503 when the budget
// passes first (the work goes on; a retry finds the task busy or done). budget is closed when
// the budget ends or after the flight is settled (see lead and work).
func (h *CallbackHandler) awaitLead(ctx context.Context, f *flight, taskID string, budget <-chan struct{}) int {
	select {
	case <-budget:
		h.mu.Lock()
		settled, status := f.settled, f.status
		h.mu.Unlock()
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
	h.log.Error("runway: callback processing exceeded its budget; answered 503, still running",
		slog.String("task_id", taskID), slog.Duration("budget", h.resultTimeout))
	return http.StatusServiceUnavailable
}

// reject logs why a request was refused and returns status.
func (h *CallbackHandler) reject(r *http.Request, status int, msg string, attrs ...slog.Attr) int {
	attrs = append(attrs, slog.Int("status", status), slog.String("remote", printable(r.RemoteAddr, 64)))
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "runway: callback rejected: "+msg, attrs...)
	return status
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
