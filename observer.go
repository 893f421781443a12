package runway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// Op names an operation the SDK reports to an Observer.
type Op string

// Operations reported to Observer.Start and carried by the events.
const (
	OpGenerate      Op = "generate"       // Client.Generate
	OpExtend        Op = "extend"         // Client.Extend
	OpGenerateAleph Op = "generate_aleph" // Client.GenerateAleph
	OpGetTask       Op = "get_task"       // a details request: GetTask, GetAlephTask, a wait's poll, a re-fetch
	OpWait          Op = "wait"           // Client.WaitForResult
	OpCallback      Op = "callback"       // one request to a CallbackHandler
	OpDownload      Op = "download"       // one file: Download, SaveResult and its kin
)

// Observer receives the SDK's own events, for metrics and traces (the runwayotel module
// turns them into OpenTelemetry metrics and spans). Every field is optional; set the ones you
// need and pass the Observer to WithObserver (client) or WithCallbackObserver (handler). The
// zero Observer observes nothing and costs nothing.
//
// The funcs are called synchronously on the goroutine doing the work, so they must be quick
// and must not block: record a measurement, end a span, hand off to a channel that never
// blocks. (A callback answered 503 at its budget while its processing goes on reports
// OnCallback, and OnResult if the result was in, on the budget's timer.) They may be called
// concurrently. A func that panics is recovered; the first panic of each kind is logged at
// error level on the client's (or handler's) logger and the SDK goes on as if the func had
// returned.
//
// Every operation that Start is called for ends with exactly one event carrying the context
// Start returned as its Ctx: OnSubmit for the submissions, OnPoll for OpGetTask, OnWaitEnd,
// OnCallback and OnDownload. OnResult is not an operation's end: it reports a result entering
// the SDK.
//
// Fields may be added in later versions; set them by name.
type Observer struct {
	// Start is called when an operation begins, before any request is sent, with the
	// caller's ctx and the task id when it is known at that point (OpGetTask, OpWait, and
	// OpDownload from SaveResult; empty otherwise). The ctx it returns is the one the SDK
	// uses for the operation's requests and hands back as the end event's Ctx. Start a span
	// here: an HTTP client span made by an instrumented transport (otelhttp) then nests
	// inside it. Derive the returned ctx from ctx (the SDK keeps its own bookkeeping there);
	// returning nil keeps ctx.
	Start func(ctx context.Context, op Op, taskID string) context.Context

	// OnSubmit reports the end of a Generate, Extend or GenerateAleph call.
	OnSubmit func(SubmitEvent)
	// OnPoll reports the end of one details request (GetTask, GetAlephTask, each poll of
	// WaitForResult and WithRefetch's fetch), retries included.
	OnPoll func(PollEvent)
	// OnWaitEnd reports the end of a WaitForResult call that got past argument checks.
	OnWaitEnd func(WaitEndEvent)
	// OnCallback reports the answer a CallbackHandler gave to one request.
	OnCallback func(CallbackEvent)
	// OnResult reports a task result entering the SDK: accepted from a callback (once the
	// result func and publishing succeeded) or found by WaitForResult's polling. A callback
	// for a task whose result polling found already is reported again, with its own Source.
	OnResult func(ResultEvent)
	// OnDownload reports the end of one file download.
	OnDownload func(DownloadEvent)
	// OnJournal reports one write to the client's journal (WithJournal): a submitted task
	// added, a handled one removed.
	OnJournal func(JournalEvent)
	// OnReconcile reports what CallbackHandler.Reconcile did with one journaled task on one
	// visit. Its poll is reported to OnPoll as well, and a result it delivers to OnResult.
	OnReconcile func(ReconcileEvent)
}

// SubmitOutcome is how a submission ended.
type SubmitOutcome string

// Submission outcomes.
const (
	SubmitCreated  SubmitOutcome = "created"  // the API returned a task id
	SubmitRefused  SubmitOutcome = "refused"  // refused locally (*ValidationError); nothing was sent
	SubmitRejected SubmitOutcome = "rejected" // the API answered with an error; no task
	SubmitUnknown  SubmitOutcome = "unknown"  // ErrOutcomeUnknown: the task may exist
	SubmitFailed   SubmitOutcome = "failed"   // never reached the API (network, context ended, rate-slot wait cancelled)
)

// SubmitEvent reports a submission.
type SubmitEvent struct {
	Ctx      context.Context // the ctx Observer.Start returned, else the caller's
	Op       Op              // OpGenerate, OpExtend or OpGenerateAleph
	TaskID   string          // the new task's id when Outcome is SubmitCreated
	Outcome  SubmitOutcome
	Err      error         // nil when created
	Retries  int           // retried attempts (429 and connection failures)
	SlotWait time.Duration // time spent waiting for a slot of WithSubmitRateLimit
	Start    time.Time
	Duration time.Duration // slot wait and retries included
}

// PollEvent reports one details request.
type PollEvent struct {
	Ctx    context.Context
	TaskID string
	Aleph  bool  // the Aleph details endpoint
	State  State // the task's state; empty when Err is set
	Err    error
	// Class takes a fixed set of values whatever the API answers, fit for a metric label.
	// When the request succeeded it is State if State is known (State.Known), else
	// "unknown_state" (State keeps the raw value). Otherwise it is an error class:
	// "not_found", "unauthorized", "rate_limited", "server_error", "api_error" (any other
	// answer), "malformed" (a 2xx that is not the API's envelope), "invalid" (refused
	// locally), "timeout", "canceled" or "transport".
	Class    string
	Retries  int
	Start    time.Time
	Duration time.Duration
}

// WaitOutcome is how a WaitForResult call ended.
type WaitOutcome string

// Wait outcomes.
const (
	WaitSuccess  WaitOutcome = "success"  // the task succeeded
	WaitFailed   WaitOutcome = "failed"   // the task ran and failed (*TaskError)
	WaitTimeout  WaitOutcome = "timeout"  // WithWaitTimeout passed
	WaitCanceled WaitOutcome = "canceled" // the context ended
	WaitAborted  WaitOutcome = "aborted"  // a permanent poll error or an unknown state
)

// WaitEndEvent reports the end of a WaitForResult call.
type WaitEndEvent struct {
	Ctx      context.Context
	TaskID   string
	Outcome  WaitOutcome
	Source   Source // where the result came from; empty without a result
	Err      error
	Polls    int // details requests made by this wait
	Start    time.Time
	Duration time.Duration
}

// CallbackReason says why a CallbackHandler did not answer 200. The set is fixed, so it is
// usable as a metric attribute.
type CallbackReason string

// Callback refusal reasons, one per non-200 answer.
const (
	CallbackBadMethod    CallbackReason = "method"      // 405
	CallbackBadMediaType CallbackReason = "media_type"  // 415: not JSON, or compressed
	CallbackTooLarge     CallbackReason = "too_large"   // 413
	CallbackMalformed    CallbackReason = "malformed"   // 400: unreadable or undecodable body
	CallbackBadSignature CallbackReason = "signature"   // 401: missing, invalid or stale signature
	CallbackFailed       CallbackReason = "failed"      // 500: result func, publishing, re-fetch or the Deduper failed
	CallbackUnavailable  CallbackReason = "unavailable" // 503: busy elsewhere, over budget, not finished yet
	CallbackOther        CallbackReason = "other"       // any other status
)

// ProcessOutcome is what became of the result processing (re-fetch, publish, result func)
// started by a callback request.
type ProcessOutcome string

// Processing outcomes.
const (
	ProcessNone    ProcessOutcome = ""        // nothing ran for this request (refused or duplicate)
	ProcessOK      ProcessOutcome = "ok"      // ran and succeeded
	ProcessError   ProcessOutcome = "error"   // ran and failed or panicked
	ProcessRunning ProcessOutcome = "running" // still running when the handler answered (over budget)
)

// CallbackEvent reports one callback request and the handler's answer.
type CallbackEvent struct {
	Ctx       context.Context // the request's context as Observer.Start returned it
	TaskID    string          // empty when the request was refused before the body was verified
	Status    int             // the HTTP status answered
	Reason    CallbackReason  // empty for 200
	Duplicate bool            // 200 for a task processed before (or by a concurrent delivery)
	Processed ProcessOutcome
	// ProcessDuration is how long the processing took, when Processed is ProcessOK or
	// ProcessError.
	ProcessDuration time.Duration
	Start           time.Time
	Duration        time.Duration
}

// ResultEvent reports a result entering the SDK.
type ResultEvent struct {
	Ctx       context.Context
	TaskID    string
	Source    Source    // SourceCallback or SourcePoll
	State     State     // StateSuccess or StateFail
	ErrorKind ErrorKind // the failure's class; empty on success
	// SinceSubmit is the time from this client's submission of the task to now; 0 when
	// unknown (a task submitted elsewhere, or by another process or client).
	SinceSubmit time.Duration
}

// DownloadOutcome is how a download ended.
type DownloadOutcome string

// Download outcomes.
const (
	DownloadOK       DownloadOutcome = "ok"
	DownloadFailed   DownloadOutcome = "failed"
	DownloadCanceled DownloadOutcome = "canceled" // the context ended
)

// DownloadEvent reports one file download.
type DownloadEvent struct {
	Ctx      context.Context
	TaskID   string // the task the file belongs to for SaveResult and its kin; empty for Download
	Outcome  DownloadOutcome
	Err      error
	Bytes    int64 // bytes written by this download
	Attempts int   // requests made, the first included
	Start    time.Time
	Duration time.Duration
}

// JournalOp is a write to the journal.
type JournalOp string

// Journal writes.
const (
	JournalAdd    JournalOp = "add"    // a submitted task journaled
	JournalRemove JournalOp = "remove" // a handled (or abandoned) task removed
)

// JournalEvent reports one journal write.
type JournalEvent struct {
	Ctx      context.Context
	TaskID   string
	Op       JournalOp
	Err      error // the journal's error; nil when written
	Start    time.Time
	Duration time.Duration
}

// ReconcileOutcome is what Reconcile did with a journaled task on one visit.
type ReconcileOutcome string

// Reconcile outcomes.
const (
	ReconcilePending   ReconcileOutcome = "pending"   // polled: not finished yet (or a state the SDK does not know)
	ReconcileDelivered ReconcileOutcome = "delivered" // finished: delivered through the result func, then removed
	ReconcileDuplicate ReconcileOutcome = "duplicate" // finished and processed before (a callback, another replica): removed
	ReconcileRetry     ReconcileOutcome = "retry"     // the poll or the delivery failed: visited again later
	ReconcileAbandoned ReconcileOutcome = "abandoned" // given up on (not found, past retention) and removed
)

// ReconcileEvent reports one visit of Reconcile to a journaled task.
type ReconcileEvent struct {
	Ctx     context.Context
	TaskID  string
	Outcome ReconcileOutcome
	Err     error // why a visit is retried or the task abandoned
	// Age is the time since the task's submission (JournalEntry.SubmittedAt); 0 when unknown.
	Age      time.Duration
	Start    time.Time
	Duration time.Duration
}

// WithObserver sets the client's observer (see Observer); a CallbackHandler made by this
// client's CallbackHandler method reports to it as well, unless given WithCallbackObserver.
// The default observes nothing.
func WithObserver(o Observer) Option {
	return Option{func(c *clientConfig) error {
		c.observer = o
		return nil
	}}
}

// WithCallbackObserver sets the handler's observer (default: the client's for
// Client.CallbackHandler, none for NewCallbackHandler). Only Start, OnCallback and OnResult
// are called by a handler.
func WithCallbackObserver(o Observer) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		c.observer = o
		return nil
	}}
}

// maxSubmitTimes bounds how many submission times an observer remembers for
// ResultEvent.SinceSubmit; the oldest is forgotten first.
const maxSubmitTimes = 16384

// Event kinds, for logging an observer's panic once per kind.
const (
	obsStart = iota
	obsSubmit
	obsPoll
	obsWait
	obsCallback
	obsResult
	obsDownload
	obsJournal
	obsReconcile
	obsKinds
)

var obsKindNames = [obsKinds]string{"start", "submit", "poll", "wait", "callback", "result", "download", "journal", "reconcile"}

// observer is an Observer with what calling it needs. A nil *observer observes nothing: every
// method checks for it first, so an SDK without an observer pays a nil check per event.
type observer struct {
	o         Observer
	log       *slog.Logger
	now       func() time.Time
	submitted *boundedMap[time.Time] // submission times; nil unless OnResult is set
	panicked  [obsKinds]atomic.Bool
}

// newObserver returns nil for the zero Observer. A field added to Observer joins the check
// below and gets an obs* kind above.
func newObserver(o Observer, log *slog.Logger, now func() time.Time) *observer {
	if o.Start == nil && o.OnSubmit == nil && o.OnPoll == nil && o.OnWaitEnd == nil &&
		o.OnCallback == nil && o.OnResult == nil && o.OnDownload == nil && o.OnJournal == nil &&
		o.OnReconcile == nil {
		return nil
	}
	ob := &observer{o: o, log: log, now: now}
	if o.OnResult != nil {
		ob.submitted = newBoundedMap[time.Time](maxSubmitTimes)
	}
	return ob
}

// opRun is one observed operation in flight. It rides in the operation's ctx so that the
// code deep inside (retries, the rate-slot wait, the callback's processing) can add to it.
type opRun struct {
	ctx      context.Context // what Start returned
	op       Op
	start    time.Time
	retries  atomic.Int32
	slotWait time.Duration // the submitting goroutine only

	// OpCallback only. The processing may outlive the answer (over budget), and then the
	// answer is given on another goroutine: hence the atomics.
	taskID    string
	status    int
	processed atomic.Int32 // 0 none, 1 running, 2 ok, 3 error
	procNanos atomic.Int64
	delivered *Result      // set by the processing before it moves handoff on
	handoff   atomic.Int32 // who reports delivered: see callbackResult
	ended     atomic.Bool  // OnCallback reported (callbackEnd runs once per request)
}

// States of opRun.handoff.
const (
	handoffPending  = iota // neither the processing nor the answer is over
	handoffResult          // the processing delivered a result; the answer reports it
	handoffAnswered        // answered first (over budget, or nothing processed)
)

type opRunKey struct{}

// start begins an observed operation. Without an observer it returns ctx and nil.
func (o *observer) start(ctx context.Context, op Op, taskID string) (context.Context, *opRun) {
	if o == nil {
		return ctx, nil
	}
	return o.startRun(ctx, op, taskID)
}

func (o *observer) startRun(ctx context.Context, op Op, taskID string) (context.Context, *opRun) {
	run := &opRun{op: op, start: o.now()}
	ctx = context.WithValue(ctx, opRunKey{}, run)
	run.ctx = o.callStart(ctx, op, taskID)
	return run.ctx, run
}

// callStart calls Start, keeping ctx if it panics or returns nil.
func (o *observer) callStart(ctx context.Context, op Op, taskID string) (out context.Context) {
	out = ctx
	if o.o.Start == nil {
		return ctx
	}
	defer o.contain(obsStart)
	if c := o.o.Start(ctx, op, taskID); c != nil {
		out = c
	}
	return out
}

// contain recovers a panicking observer func and logs the first panic of each kind.
func (o *observer) contain(kind int) {
	p := recover()
	if p == nil {
		return
	}
	if !o.panicked[kind].Swap(true) {
		o.log.Error("runway: observer panicked; later panics of this event kind are not logged",
			slog.String("kind", obsKindNames[kind]), slog.String("panic", printable(fmt.Sprint(p), 256)))
	}
}

func runFrom(ctx context.Context) *opRun {
	r, _ := ctx.Value(opRunKey{}).(*opRun)
	return r
}

// retried counts a retried attempt of the operation running in ctx.
func (o *observer) retried(ctx context.Context) {
	if o == nil {
		return
	}
	if r := runFrom(ctx); r != nil {
		r.retries.Add(1)
	}
}

// slotWaited records the time a submission waits for its rate slot.
func (o *observer) slotWaited(ctx context.Context, d time.Duration) {
	if o == nil {
		return
	}
	if r := runFrom(ctx); r != nil {
		r.slotWait += d
	}
}

// submitEnd reports a submission (deferred with pointers to its results).
func (o *observer) submitEnd(run *opRun, id *string, err *error) {
	if o == nil || run == nil {
		return
	}
	ev := SubmitEvent{Ctx: run.ctx, Op: run.op, Outcome: submitOutcome(*err), Err: *err,
		Retries: int(run.retries.Load()), SlotWait: run.slotWait, Start: run.start, Duration: o.now().Sub(run.start)}
	if *err == nil {
		ev.TaskID = *id
		if o.submitted != nil {
			o.submitted.put(*id, run.start)
		}
	}
	if o.o.OnSubmit != nil {
		defer o.contain(obsSubmit)
		o.o.OnSubmit(ev)
	}
}

func submitOutcome(err error) SubmitOutcome {
	var ve *ValidationError
	var ae *APIError
	switch {
	case err == nil:
		return SubmitCreated
	case errors.Is(err, ErrOutcomeUnknown):
		return SubmitUnknown
	case errors.As(err, &ve):
		return SubmitRefused
	case errors.As(err, &ae):
		return SubmitRejected
	}
	return SubmitFailed
}

// pollEnd reports a details request.
func (o *observer) pollEnd(run *opRun, taskID string, aleph bool, t **Task, err *error) {
	if o == nil || run == nil {
		return
	}
	ev := PollEvent{Ctx: run.ctx, TaskID: taskID, Aleph: aleph, Err: *err,
		Retries: int(run.retries.Load()), Start: run.start, Duration: o.now().Sub(run.start)}
	if *err == nil && *t != nil {
		ev.State, ev.Class = (*t).State, string((*t).State)
		if !ev.State.Known() {
			ev.Class = "unknown_state"
		}
	} else {
		ev.Class = errorClass(*err)
	}
	if o.o.OnPoll != nil {
		defer o.contain(obsPoll)
		o.o.OnPoll(ev)
	}
}

// errorClass sorts a request error into PollEvent.Class's fixed set.
func errorClass(err error) string {
	var ae *APIError
	var ve *ValidationError
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ve):
		return "invalid"
	case errors.As(err, &ae):
		switch {
		case errors.Is(ae, ErrNotFound):
			return "not_found"
		case errors.Is(ae, ErrUnauthorized):
			return "unauthorized"
		case errors.Is(ae, ErrRateLimited):
			return "rate_limited"
		case garbled2xx(ae):
			return "malformed"
		case ae.code() >= 500 || ae.StatusCode >= 500:
			return "server_error"
		}
		return "api_error"
	}
	return "transport"
}

// waitEnd reports the end of a wait.
func (o *observer) waitEnd(run *opRun, w *waitRun, res **Result, err *error) {
	if o == nil || run == nil {
		return
	}
	ev := WaitEndEvent{Ctx: run.ctx, TaskID: w.taskID, Outcome: waitOutcomeOf(*err), Err: *err,
		Polls: w.polls, Start: run.start, Duration: o.now().Sub(run.start)}
	if *res != nil {
		ev.Source = (*res).Source
	}
	if o.o.OnWaitEnd != nil {
		defer o.contain(obsWait)
		o.o.OnWaitEnd(ev)
	}
}

func waitOutcomeOf(err error) WaitOutcome {
	switch {
	case err == nil:
		return WaitSuccess
	case errors.Is(err, ErrTaskFailed):
		return WaitFailed
	case errors.Is(err, ErrWaitTimeout):
		return WaitTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return WaitCanceled
	}
	return WaitAborted
}

// result reports a result entering the SDK.
func (o *observer) result(ctx context.Context, r *Result) {
	if o == nil || o.o.OnResult == nil {
		return
	}
	o.reportResult(ctx, r, time.Time{})
}

// reportResult reports r; submitted is when the task was submitted, if known, else the
// client's memory of its own submissions is asked.
func (o *observer) reportResult(ctx context.Context, r *Result, submitted time.Time) {
	ev := ResultEvent{Ctx: ctx, TaskID: r.TaskID, Source: r.Source, State: StateSuccess}
	if err := r.Err(); err != nil {
		ev.State = StateFail
		var te *TaskError
		if errors.As(err, &te) {
			ev.ErrorKind = te.Kind
		}
	}
	if at, ok := o.submitted.get(r.TaskID); ok && submitted.IsZero() {
		submitted = at
	}
	if !submitted.IsZero() {
		ev.SinceSubmit = max(o.now().Sub(submitted), 0)
	}
	defer o.contain(obsResult)
	o.o.OnResult(ev)
}

// downloadEnd reports a download.
func (o *observer) downloadEnd(run *opRun, d *download, err *error) {
	if o == nil || run == nil {
		return
	}
	ev := DownloadEvent{Ctx: run.ctx, TaskID: d.taskID, Outcome: DownloadOK, Err: *err, Bytes: d.written,
		Attempts: d.attempts, Start: run.start, Duration: o.now().Sub(run.start)}
	if *err != nil {
		ev.Outcome = DownloadFailed
		if errors.Is(*err, context.Canceled) || errors.Is(*err, context.DeadlineExceeded) {
			ev.Outcome = DownloadCanceled
		}
	}
	if o.o.OnDownload != nil {
		defer o.contain(obsDownload)
		o.o.OnDownload(ev)
	}
}

// journalWrite reports a journal write that started at start.
func (o *observer) journalWrite(ctx context.Context, op JournalOp, taskID string, start time.Time, err error) {
	if o == nil || o.o.OnJournal == nil {
		return
	}
	defer o.contain(obsJournal)
	o.o.OnJournal(JournalEvent{Ctx: ctx, TaskID: taskID, Op: op, Err: err, Start: start, Duration: o.now().Sub(start)})
}

// reconciled reports a visit of Reconcile to e that started at start, and for a delivery
// the result delivered (r, with the entry's submission time).
func (o *observer) reconciled(ctx context.Context, e JournalEntry, out ReconcileOutcome, err error, r *Result, start time.Time) {
	if o == nil {
		return
	}
	if r != nil && o.o.OnResult != nil {
		o.reportResult(ctx, r, e.SubmittedAt)
	}
	if o.o.OnReconcile == nil {
		return
	}
	now := o.now()
	ev := ReconcileEvent{Ctx: ctx, TaskID: e.TaskID, Outcome: out, Err: err, Start: start, Duration: now.Sub(start)}
	if !e.SubmittedAt.IsZero() {
		ev.Age = max(now.Sub(e.SubmittedAt), 0)
	}
	defer o.contain(obsReconcile)
	o.o.OnReconcile(ev)
}

// callbackWriter records the status answered. It hides the server's own writer from
// http.MaxBytesReader, which then cannot ask the server to close the connection after a body
// over the cap; the 413 answer is the same. Only an observed handler wraps its writer.
type callbackWriter struct {
	http.ResponseWriter
	run *opRun
}

func (w *callbackWriter) WriteHeader(status int) {
	w.run.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap gives http.ResponseController the original writer.
func (w *callbackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// callbackStart begins an observed callback request: it returns the writer and request the
// handler uses from then on. Without an observer they are w and r.
func (o *observer) callbackStart(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	if o == nil {
		return w, r
	}
	return o.callbackStartRun(w, r)
}

func (o *observer) callbackStartRun(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	ctx, run := o.startRun(r.Context(), OpCallback, "")
	return &callbackWriter{ResponseWriter: w, run: run}, r.WithContext(ctx)
}

// callbackTask notes the task id of a request that passed the checks.
func (o *observer) callbackTask(w http.ResponseWriter, taskID string) {
	if o == nil {
		return
	}
	if cw, ok := w.(*callbackWriter); ok {
		cw.run.taskID = taskID
	}
}

// processing marks the start of a callback's processing in ctx's request and returns the
// time, for processed.
func (o *observer) processing(ctx context.Context) time.Time {
	if o == nil {
		return time.Time{}
	}
	return o.markProcessing(ctx)
}

func (o *observer) markProcessing(ctx context.Context) time.Time {
	if cr := runFrom(ctx); cr != nil && cr.op == OpCallback {
		cr.processed.Store(1)
	}
	return o.now()
}

// processed records the end of a callback's processing (deferred with pointers to the
// result delivered, re-fetched or not, and the error).
func (o *observer) processed(ctx context.Context, start time.Time, res **Result, err *error) {
	if o == nil {
		return
	}
	if cr := runFrom(ctx); cr != nil && cr.op == OpCallback {
		cr.procNanos.Store(int64(o.now().Sub(start)))
		if *err == nil {
			cr.delivered = *res
			cr.processed.Store(2)
		} else {
			cr.processed.Store(3)
		}
	}
}

// callbackResult hands the result a callback's processing delivered, if it succeeded, to
// the request's answer, which reports it before OnCallback, on whichever goroutine answers.
// (When the processing runs on a goroutine of its own, which starts with a small stack that
// the delivery fills, an observer called there would make it grow: a copy per delivery.)
// Only when the answer went first (over budget) is the result reported here.
func (o *observer) callbackResult(ctx context.Context) {
	if o == nil || o.o.OnResult == nil {
		return
	}
	cr := runFrom(ctx)
	if cr == nil || cr.op != OpCallback || cr.delivered == nil {
		return
	}
	if !cr.handoff.CompareAndSwap(handoffPending, handoffResult) {
		o.reportResult(ctx, cr.delivered, time.Time{})
	}
}

// callbackAborted notes that a callback request ends unanswered (a panic escaped the work):
// reported as 500, a failure, rather than net/http's implicit 200.
func (o *observer) callbackAborted(w http.ResponseWriter) {
	if o == nil {
		return
	}
	if cw, ok := w.(*callbackWriter); ok && cw.run.status == 0 {
		cw.run.status = http.StatusInternalServerError
	}
}

// callbackEnd reports the answer to a callback request.
func (o *observer) callbackEnd(w http.ResponseWriter, _ *http.Request) {
	if o == nil {
		return
	}
	cw, ok := w.(*callbackWriter)
	if !ok {
		return
	}
	cr := cw.run
	if cr.ended.Swap(true) {
		return // answered over budget while ServeHTTP went on, and reported then
	}
	if !cr.handoff.CompareAndSwap(handoffPending, handoffAnswered) && o.o.OnResult != nil {
		o.reportResult(cr.ctx, cr.delivered, time.Time{}) // handoffResult: see callbackResult
	}
	ev := CallbackEvent{Ctx: cr.ctx, TaskID: cr.taskID, Status: cr.status, Start: cr.start,
		Duration: o.now().Sub(cr.start)}
	if ev.Status == 0 {
		ev.Status = http.StatusOK // nothing written: net/http answers 200
	}
	switch cr.processed.Load() {
	case 1:
		ev.Processed = ProcessRunning
	case 2:
		ev.Processed = ProcessOK
		ev.ProcessDuration = time.Duration(cr.procNanos.Load())
	case 3:
		ev.Processed = ProcessError
		ev.ProcessDuration = time.Duration(cr.procNanos.Load())
	}
	if ev.Status == http.StatusOK {
		ev.Duplicate = ev.Processed == ProcessNone
	} else {
		ev.Reason = callbackReason(ev.Status)
	}
	if o.o.OnCallback != nil {
		defer o.contain(obsCallback)
		o.o.OnCallback(ev)
	}
}

func callbackReason(status int) CallbackReason {
	switch status {
	case http.StatusMethodNotAllowed:
		return CallbackBadMethod
	case http.StatusUnsupportedMediaType:
		return CallbackBadMediaType
	case http.StatusRequestEntityTooLarge:
		return CallbackTooLarge
	case http.StatusBadRequest:
		return CallbackMalformed
	case http.StatusUnauthorized:
		return CallbackBadSignature
	case http.StatusInternalServerError:
		return CallbackFailed
	case http.StatusServiceUnavailable:
		return CallbackUnavailable
	}
	return CallbackOther
}
