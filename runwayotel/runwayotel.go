// Package runwayotel reports the runway SDK's own events as OpenTelemetry metrics and spans:
// submissions, polls, waits, callbacks, results, downloads, journal writes and Reconcile's
// visits to journaled tasks.
//
//	otelRunway, err := runwayotel.New() // the global MeterProvider and TracerProvider
//	if err != nil { ... }
//	c, err := runway.NewClient(key, otelRunway.ClientOption())
//	mux.Handle("/kie/callback", c.CallbackHandler(runway.WithHMACKey(hmacKey)))
//
// A handler made by Client.CallbackHandler reports through the client's observer; a
// standalone NewCallbackHandler takes CallbackOption.
//
// # Metrics
//
// Every metric name starts with "runway."; units are UCUM. Attributes come from small fixed
// sets: no task id, URL or key is ever a metric attribute.
//
//	runway.submissions                   counter    {submission} runway.operation, runway.submission.outcome
//	runway.submission.duration           histogram  s            runway.operation, runway.submission.outcome
//	runway.submission.slot_wait          histogram  s            runway.operation
//	runway.submission.retries            counter    {retry}      runway.operation
//	runway.polls                         counter    {request}    runway.poll.result
//	runway.poll.duration                 histogram  s            runway.poll.result
//	runway.callbacks                     counter    {request}    http.response.status_code, runway.callback.outcome, runway.callback.reason
//	runway.callback.duration             histogram  s            http.response.status_code, runway.callback.outcome
//	runway.callback.processing.duration  histogram  s            runway.callback.processing.outcome
//	runway.results                       counter    {result}     runway.result.source, runway.task.state, runway.error.kind
//	runway.task.duration                 histogram  s            runway.result.source, runway.task.state
//	runway.wait.duration                 histogram  s            runway.wait.outcome, runway.result.source
//	runway.wait.polls                    histogram  {request}    runway.wait.outcome
//	runway.download.bytes                counter    By           runway.download.outcome
//	runway.download.duration             histogram  s            runway.download.outcome
//	runway.journal.operations            counter    {operation}  runway.journal.operation, runway.journal.outcome
//	runway.journal.duration              histogram  s            runway.journal.operation, runway.journal.outcome
//	runway.reconcile.visits              counter    {visit}      runway.reconcile.outcome
//	runway.reconcile.age                 histogram  s            runway.reconcile.outcome
//
// runway.poll.result is a known task state or an error class (runway.PollEvent.Class); a
// state the SDK does not know is "unknown_state", whatever its value.
//
// See the README for what each one means and example queries.
//
// # Spans
//
// One span per operation, started before the SDK sends its first request: runway.generate,
// runway.extend, runway.generate_aleph, runway.get_task (every details request, so a wait's
// polls are its children), runway.wait, runway.callback and runway.download. They carry the
// task id as runway.task.id when it is known (a download's only when SaveResult or its kin
// made it). The SDK sends its requests with the span's
// context, so when the http.Client given to runway.WithHTTPClient uses an otelhttp
// transport, each HTTP client span is a child of the SDK's span. A result entering the SDK is
// an event ("runway.result") on the span of the callback or the wait that brought it.
package runwayotel

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	runway "github.com/b9c9aec2/runway-go"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/b9c9aec2/runway-go/runwayotel"

// Attribute keys.
const (
	AttrTaskID            = attribute.Key("runway.task.id") // spans only
	AttrOperation         = attribute.Key("runway.operation")
	AttrSubmitOutcome     = attribute.Key("runway.submission.outcome")
	AttrPollResult        = attribute.Key("runway.poll.result")
	AttrCallbackOutcome   = attribute.Key("runway.callback.outcome")
	AttrCallbackReason    = attribute.Key("runway.callback.reason")
	AttrProcessingOutcome = attribute.Key("runway.callback.processing.outcome")
	AttrResultSource      = attribute.Key("runway.result.source")
	AttrTaskState         = attribute.Key("runway.task.state")
	AttrErrorKind         = attribute.Key("runway.error.kind")
	AttrWaitOutcome       = attribute.Key("runway.wait.outcome")
	AttrDownloadOutcome   = attribute.Key("runway.download.outcome")
	AttrJournalOperation  = attribute.Key("runway.journal.operation")
	AttrJournalOutcome    = attribute.Key("runway.journal.outcome")
	AttrReconcileOutcome  = attribute.Key("runway.reconcile.outcome")
	AttrHTTPStatus        = attribute.Key("http.response.status_code")
	AttrRetries           = attribute.Key("runway.retries")  // spans only
	AttrPolls             = attribute.Key("runway.polls")    // spans only
	AttrBytes             = attribute.Key("runway.bytes")    // spans only
	AttrAttempts          = attribute.Key("runway.attempts") // spans only
)

// Callback outcomes (runway.callback.outcome).
const (
	CallbackAccepted  = "accepted"  // 200, processed by this request
	CallbackDuplicate = "duplicate" // 200, processed before
	CallbackRefused   = "refused"   // 4xx: the request was refused (see runway.callback.reason)
	CallbackFailed    = "failed"    // 5xx: Kie retries (see runway.callback.reason)
)

// Option configures New.
type Option func(*config)

type config struct {
	mp metric.MeterProvider
	tp trace.TracerProvider
}

// WithMeterProvider sets the MeterProvider (default: otel.GetMeterProvider() at New).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithTracerProvider sets the TracerProvider (default: otel.GetTracerProvider() at New).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// Instrumentation turns the SDK's events into metrics and spans. Wire it with ClientOption
// (and CallbackOption for a standalone handler). It is safe for concurrent use; one
// Instrumentation may serve several clients.
type Instrumentation struct {
	tracer trace.Tracer

	submissions      metric.Int64Counter
	submitDuration   metric.Float64Histogram
	slotWait         metric.Float64Histogram
	submitRetries    metric.Int64Counter
	polls            metric.Int64Counter
	pollDuration     metric.Float64Histogram
	callbacks        metric.Int64Counter
	callbackDuration metric.Float64Histogram
	processDuration  metric.Float64Histogram
	results          metric.Int64Counter
	taskDuration     metric.Float64Histogram
	waitDuration     metric.Float64Histogram
	waitPolls        metric.Int64Histogram
	downloadBytes    metric.Int64Counter
	downloadDuration metric.Float64Histogram
	journalOps       metric.Int64Counter
	journalDuration  metric.Float64Histogram
	reconcileVisits  metric.Int64Counter
	reconcileAge     metric.Float64Histogram

	mu    sync.RWMutex
	attrs map[attrKey]metric.MeasurementOption // built once per combination
}

// Bucket boundaries, in seconds.
var (
	requestBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	taskBuckets    = []float64{5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600}
	pollBuckets    = []float64{0, 1, 2, 3, 5, 8, 13, 21, 34, 55}
)

// New creates the instruments. A nil provider in an option selects the global one.
func New(opts ...Option) (*Instrumentation, error) {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	meter := cfg.mp.Meter(ScopeName, metric.WithInstrumentationVersion(runway.Version))
	i := &Instrumentation{
		tracer: cfg.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(runway.Version)),
		attrs:  make(map[attrKey]metric.MeasurementOption),
	}
	var b builder
	i.submissions = b.counter(meter, "runway.submissions", "{submission}", "Task submissions (Generate, Extend, GenerateAleph) by outcome.")
	i.submitDuration = b.histogram(meter, "runway.submission.duration", "s", "Time a submission took, rate-slot wait and retries included.", requestBuckets)
	i.slotWait = b.histogram(meter, "runway.submission.slot_wait", "s", "Time a submission waited for a slot of the client's submission rate limit.", requestBuckets)
	i.submitRetries = b.counter(meter, "runway.submission.retries", "{retry}", "Retried submission attempts (429 or a failed connection).")
	i.polls = b.counter(meter, "runway.polls", "{request}", "Task details requests by the state seen or the error class.")
	i.pollDuration = b.histogram(meter, "runway.poll.duration", "s", "Time a task details request took, retries included.", requestBuckets)
	i.callbacks = b.counter(meter, "runway.callbacks", "{request}", "Callback requests answered, by status, outcome and refusal reason.")
	i.callbackDuration = b.histogram(meter, "runway.callback.duration", "s", "Time the callback handler took to answer a request.", requestBuckets)
	i.processDuration = b.histogram(meter, "runway.callback.processing.duration", "s", "Time a callback's processing (re-fetch, publish, result func) took.", requestBuckets)
	i.results = b.counter(meter, "runway.results", "{result}", "Task results that entered the SDK, by source, state and failure class.")
	i.taskDuration = b.histogram(meter, "runway.task.duration", "s", "Time from this client's submission of a task to its result.", taskBuckets)
	i.waitDuration = b.histogram(meter, "runway.wait.duration", "s", "Time a WaitForResult call took, by outcome.", taskBuckets)
	i.waitPolls = b.intHistogram(meter, "runway.wait.polls", "{request}", "Details requests made by one WaitForResult call.", pollBuckets)
	i.downloadBytes = b.counter(meter, "runway.download.bytes", "By", "Bytes downloaded, by download outcome.")
	i.downloadDuration = b.histogram(meter, "runway.download.duration", "s", "Time a file download took, retries included.", taskBuckets)
	i.journalOps = b.counter(meter, "runway.journal.operations", "{operation}", "Journal writes (a submitted task added, a handled one removed), by outcome.")
	i.journalDuration = b.histogram(meter, "runway.journal.duration", "s", "Time a journal write took.", requestBuckets)
	i.reconcileVisits = b.counter(meter, "runway.reconcile.visits", "{visit}", "Reconcile's visits to journaled tasks, by outcome (pending, delivered, duplicate, retry, abandoned).")
	i.reconcileAge = b.histogram(meter, "runway.reconcile.age", "s", "Time since submission of the journaled tasks Reconcile visits, by outcome.", taskBuckets)
	if b.err != nil {
		return nil, b.err
	}
	return i, nil
}

// builder creates instruments and keeps the first error.
type builder struct{ err error }

func (b *builder) counter(m metric.Meter, name, unit, desc string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.keep(err)
	return c
}

func (b *builder) histogram(m metric.Meter, name, unit, desc string, buckets []float64) metric.Float64Histogram {
	h, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(buckets...))
	b.keep(err)
	return h
}

func (b *builder) intHistogram(m metric.Meter, name, unit, desc string, buckets []float64) metric.Int64Histogram {
	h, err := m.Int64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(buckets...))
	b.keep(err)
	return h
}

func (b *builder) keep(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

// Observer returns the runway.Observer that feeds this Instrumentation.
func (i *Instrumentation) Observer() runway.Observer {
	return runway.Observer{
		Start:       i.start,
		OnSubmit:    i.onSubmit,
		OnPoll:      i.onPoll,
		OnWaitEnd:   i.onWaitEnd,
		OnCallback:  i.onCallback,
		OnResult:    i.onResult,
		OnDownload:  i.onDownload,
		OnJournal:   i.onJournal,
		OnReconcile: i.onReconcile,
	}
}

// ClientOption wires the Instrumentation into a client and the handlers it makes with
// Client.CallbackHandler.
func (i *Instrumentation) ClientOption() runway.Option { return runway.WithObserver(i.Observer()) }

// CallbackOption wires the Instrumentation into a handler made with NewCallbackHandler (a
// client's handler needs it only to report elsewhere than the client).
func (i *Instrumentation) CallbackOption() runway.CallbackOption {
	return runway.WithCallbackObserver(i.Observer())
}

var internalSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}

// spanNames are the span names of the SDK's operations, built once.
var spanNames = func() map[runway.Op]string {
	m := make(map[runway.Op]string)
	for _, op := range []runway.Op{runway.OpGenerate, runway.OpExtend, runway.OpGenerateAleph,
		runway.OpGetTask, runway.OpWait, runway.OpCallback, runway.OpDownload} {
		m[op] = "runway." + string(op)
	}
	return m
}()

func spanName(op runway.Op) string {
	if n, ok := spanNames[op]; ok {
		return n
	}
	return "runway." + string(op)
}

// spanKey marks the spans this package started, so that an end event never ends a span of
// the caller's.
type spanKey struct{}

func (i *Instrumentation) start(ctx context.Context, op runway.Op, taskID string) context.Context {
	opts := internalSpan
	if taskID != "" {
		opts = []trace.SpanStartOption{internalSpan[0], trace.WithAttributes(AttrTaskID.String(taskID))}
	}
	ctx, span := i.tracer.Start(ctx, spanName(op), opts...)
	return context.WithValue(ctx, spanKey{}, span)
}

// ownSpan returns the span Start put in ctx, or nil.
func ownSpan(ctx context.Context) trace.Span {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(spanKey{}).(trace.Span)
	return s
}

// endSpan ends the operation's span, with err as its status.
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if span == nil {
		return
	}
	if span.IsRecording() {
		span.SetAttributes(attrs...)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// attrKey identifies one combination of metric attributes.
type attrKey struct {
	metric string
	a, b   string
	c      string
	status int
}

// set returns the measurement option for k, building it on first use. The combinations come
// from fixed sets, so the cache stays small.
func (i *Instrumentation) set(k attrKey, build func() []attribute.KeyValue) metric.MeasurementOption {
	i.mu.RLock()
	o, ok := i.attrs[k]
	i.mu.RUnlock()
	if ok {
		return o
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if o, ok := i.attrs[k]; ok {
		return o
	}
	o = metric.WithAttributeSet(attribute.NewSet(build()...))
	i.attrs[k] = o
	return o
}

func (i *Instrumentation) onSubmit(e runway.SubmitEvent) {
	ctx := e.Ctx
	op, outcome := string(e.Op), string(e.Outcome)
	both := i.set(attrKey{metric: "submit", a: op, b: outcome}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrOperation.String(op), AttrSubmitOutcome.String(outcome)}
	})
	opOnly := i.set(attrKey{metric: "op", a: op}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrOperation.String(op)}
	})
	i.submissions.Add(ctx, 1, both)
	i.submitDuration.Record(ctx, e.Duration.Seconds(), both)
	i.slotWait.Record(ctx, e.SlotWait.Seconds(), opOnly)
	if e.Retries > 0 {
		i.submitRetries.Add(ctx, int64(e.Retries), opOnly)
	}
	attrs := []attribute.KeyValue{AttrSubmitOutcome.String(outcome), AttrRetries.Int(e.Retries)}
	if e.TaskID != "" {
		attrs = append(attrs, AttrTaskID.String(e.TaskID))
	}
	endSpan(ownSpan(ctx), e.Err, attrs...)
}

// pollClassUnknown is the runway.poll.result of a task state the SDK does not know.
const pollClassUnknown = "unknown_state"

// pollClasses are the values runway.PollEvent.Class documents besides the known states.
var pollClasses = map[string]bool{pollClassUnknown: true, "not_found": true, "unauthorized": true,
	"rate_limited": true, "server_error": true, "api_error": true, "malformed": true, "invalid": true,
	"timeout": true, "canceled": true, "transport": true}

// pollClass is the runway.poll.result of a poll: its Class when that is one of the documented
// values, else "unknown_state", so that no value the API makes up opens a series of its own.
func pollClass(e runway.PollEvent) string {
	if runway.State(e.Class).Known() || pollClasses[e.Class] {
		return e.Class
	}
	return pollClassUnknown
}

func (i *Instrumentation) onPoll(e runway.PollEvent) {
	class := pollClass(e)
	opt := i.set(attrKey{metric: "poll", a: class}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrPollResult.String(class)}
	})
	i.polls.Add(e.Ctx, 1, opt)
	i.pollDuration.Record(e.Ctx, e.Duration.Seconds(), opt)
	endSpan(ownSpan(e.Ctx), e.Err, AttrPollResult.String(class), AttrRetries.Int(e.Retries))
}

func (i *Instrumentation) onWaitEnd(e runway.WaitEndEvent) {
	outcome, source := string(e.Outcome), string(e.Source)
	opt := i.set(attrKey{metric: "wait", a: outcome, b: source}, func() []attribute.KeyValue {
		kv := []attribute.KeyValue{AttrWaitOutcome.String(outcome)}
		if source != "" {
			kv = append(kv, AttrResultSource.String(source))
		}
		return kv
	})
	outcomeOnly := i.set(attrKey{metric: "wait.polls", a: outcome}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrWaitOutcome.String(outcome)}
	})
	i.waitDuration.Record(e.Ctx, e.Duration.Seconds(), opt)
	i.waitPolls.Record(e.Ctx, int64(e.Polls), outcomeOnly)
	var err error
	if e.Outcome != runway.WaitSuccess {
		err = e.Err
	}
	endSpan(ownSpan(e.Ctx), err, AttrWaitOutcome.String(outcome), AttrPolls.Int(e.Polls))
}

// callbackOutcome is the runway.callback.outcome of an answer.
func callbackOutcome(e runway.CallbackEvent) string {
	switch {
	case e.Status == http.StatusOK && e.Duplicate:
		return CallbackDuplicate
	case e.Status == http.StatusOK:
		return CallbackAccepted
	case e.Status >= 500:
		return CallbackFailed
	}
	return CallbackRefused
}

func (i *Instrumentation) onCallback(e runway.CallbackEvent) {
	ctx := e.Ctx
	outcome, reason, status := callbackOutcome(e), string(e.Reason), e.Status
	full := i.set(attrKey{metric: "callback", a: outcome, b: reason, status: status}, func() []attribute.KeyValue {
		kv := []attribute.KeyValue{AttrHTTPStatus.Int(status), AttrCallbackOutcome.String(outcome)}
		if reason != "" {
			kv = append(kv, AttrCallbackReason.String(reason))
		}
		return kv
	})
	short := i.set(attrKey{metric: "callback.duration", a: outcome, status: status}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrHTTPStatus.Int(status), AttrCallbackOutcome.String(outcome)}
	})
	i.callbacks.Add(ctx, 1, full)
	i.callbackDuration.Record(ctx, e.Duration.Seconds(), short)
	if e.Processed == runway.ProcessOK || e.Processed == runway.ProcessError {
		p := string(e.Processed)
		i.processDuration.Record(ctx, e.ProcessDuration.Seconds(), i.set(attrKey{metric: "process", a: p}, func() []attribute.KeyValue {
			return []attribute.KeyValue{AttrProcessingOutcome.String(p)}
		}))
	}
	span := ownSpan(ctx)
	if span == nil {
		return
	}
	if span.IsRecording() {
		span.SetAttributes(AttrHTTPStatus.Int(status), AttrCallbackOutcome.String(outcome))
		if reason != "" {
			span.SetAttributes(AttrCallbackReason.String(reason))
		}
		if e.TaskID != "" {
			span.SetAttributes(AttrTaskID.String(e.TaskID))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// onResult counts a result entering the SDK, records the task's duration when its submission
// time is known, and notes the result on the span that brought it.
func (i *Instrumentation) onResult(e runway.ResultEvent) {
	i.results.Add(e.Ctx, 1, i.resultAttrs(e.Source, e.State, e.ErrorKind))
	if e.SinceSubmit > 0 {
		i.recordTaskDuration(e.Ctx, e.Source, e.State, e.SinceSubmit)
	}
	if span := trace.SpanFromContext(e.Ctx); span.IsRecording() {
		resultSpanEvent(span, e)
	}
}

func (i *Instrumentation) resultAttrs(src runway.Source, st runway.State, k runway.ErrorKind) metric.MeasurementOption {
	source, state, kind := string(src), string(st), string(k)
	return i.set(attrKey{metric: "result", a: source, b: state, c: kind}, func() []attribute.KeyValue {
		kv := []attribute.KeyValue{AttrResultSource.String(source), AttrTaskState.String(state)}
		if kind != "" {
			kv = append(kv, AttrErrorKind.String(kind))
		}
		return kv
	})
}

func (i *Instrumentation) recordTaskDuration(ctx context.Context, src runway.Source, st runway.State, d time.Duration) {
	source, state := string(src), string(st)
	i.taskDuration.Record(ctx, d.Seconds(), i.set(attrKey{metric: "task", a: source, b: state}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrResultSource.String(source), AttrTaskState.String(state)}
	}))
}

// resultSpanEvent records the result on the span of the callback or the wait that brought it.
func resultSpanEvent(span trace.Span, e runway.ResultEvent) {
	attrs := []attribute.KeyValue{AttrTaskID.String(e.TaskID), AttrResultSource.String(string(e.Source)),
		AttrTaskState.String(string(e.State))}
	if e.ErrorKind != "" {
		attrs = append(attrs, AttrErrorKind.String(string(e.ErrorKind)))
	}
	span.AddEvent("runway.result", trace.WithAttributes(attrs...))
}

func (i *Instrumentation) onDownload(e runway.DownloadEvent) {
	outcome := string(e.Outcome)
	opt := i.set(attrKey{metric: "download", a: outcome}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrDownloadOutcome.String(outcome)}
	})
	i.downloadBytes.Add(e.Ctx, e.Bytes, opt)
	i.downloadDuration.Record(e.Ctx, e.Duration.Seconds(), opt)
	endSpan(ownSpan(e.Ctx), e.Err, AttrDownloadOutcome.String(outcome), AttrBytes.Int64(e.Bytes), AttrAttempts.Int(e.Attempts))
}

// Journal outcomes (runway.journal.outcome).
const (
	JournalOK    = "ok"
	JournalError = "error"
)

func (i *Instrumentation) onJournal(e runway.JournalEvent) {
	op, outcome := string(e.Op), JournalOK
	if e.Err != nil {
		outcome = JournalError
	}
	opt := i.set(attrKey{metric: "journal", a: op, b: outcome}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrJournalOperation.String(op), AttrJournalOutcome.String(outcome)}
	})
	i.journalOps.Add(e.Ctx, 1, opt)
	i.journalDuration.Record(e.Ctx, e.Duration.Seconds(), opt)
}

func (i *Instrumentation) onReconcile(e runway.ReconcileEvent) {
	outcome := string(e.Outcome)
	opt := i.set(attrKey{metric: "reconcile", a: outcome}, func() []attribute.KeyValue {
		return []attribute.KeyValue{AttrReconcileOutcome.String(outcome)}
	})
	i.reconcileVisits.Add(e.Ctx, 1, opt)
	if e.Age > 0 {
		i.reconcileAge.Record(e.Ctx, e.Age.Seconds(), opt)
	}
}
