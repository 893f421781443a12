package runwayotel_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwayotel"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

const hmacKey = "otel-webhook-secret"

// fixture is the fake Kie API, a client instrumented with runwayotel whose transport is
// otelhttp's, and the client's callback handler behind otelhttp's server handler, all
// reporting to an in-memory metric reader and span recorder.
type fixture struct {
	srv    *runwaytest.Server
	c      *runway.Client
	h      http.Handler // the SDK handler, unwrapped
	cbURL  string
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
}

func newFixture(t *testing.T, opts ...runway.Option) *fixture {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // registered first, so it runs last
	f := &fixture{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	t.Cleanup(func() {
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, tp.Shutdown(context.Background()))
	})
	inst, err := runwayotel.New(runwayotel.WithMeterProvider(mp), runwayotel.WithTracerProvider(tp))
	require.NoError(t, err)

	f.srv = runwaytest.NewServer(runwaytest.WithHMACKey(hmacKey), runwaytest.WithManualSteps())
	t.Cleanup(f.srv.Close)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	hc := &http.Client{Transport: otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp))}
	f.c, err = runway.NewClient(f.srv.APIKey, append([]runway.Option{runway.WithBaseURL(f.srv.URL), runway.WithHTTPClient(hc),
		runway.WithRetryBackoff(time.Millisecond, time.Millisecond), inst.ClientOption()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.c.Close() })
	f.h = f.c.CallbackHandler(runway.WithHMACKey(hmacKey),
		runway.WithResultFunc(func(context.Context, *runway.Result) error { return nil }))
	ts := httptest.NewServer(otelhttp.NewHandler(f.h, "kie callback", otelhttp.WithTracerProvider(tp)))
	t.Cleanup(ts.Close)
	f.cbURL = ts.URL + "/kie/callback"
	return f
}

// generate submits a task scripted with s and finishes it; with a callback, it returns once
// the callback's delivery is over.
func (f *fixture) generate(t *testing.T, s runwaytest.Script) string {
	t.Helper()
	ctx := context.Background()
	f.srv.ScriptNext(1, s)
	id, err := f.c.Generate(ctx, runway.GenerateRequest{Prompt: "a cat surfing", Duration: 5,
		Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9, CallBackURL: f.cbURL})
	require.NoError(t, err)
	_, err = f.srv.Finish(id)
	require.NoError(t, err)
	if !s.Callback.Drop {
		_, err = f.srv.WaitCallback(ctx, id)
		require.NoError(t, err)
	}
	return id
}

// point is one data point: its attributes and its value (the sum, or the histogram's count).
type point struct {
	attrs attribute.Set
	value int64
	sum   float64
}

// collect returns every data point by metric name.
func (f *fixture) collect(t *testing.T) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.reader.Collect(context.Background(), &rm))
	out := make(map[string][]point)
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, runwayotel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				require.True(t, d.IsMonotonic, m.Name)
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs: dp.Attributes, value: dp.Value})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs: dp.Attributes, value: int64(dp.Count), sum: dp.Sum})
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					out[m.Name] = append(out[m.Name], point{attrs: dp.Attributes, value: int64(dp.Count), sum: float64(dp.Sum)})
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// kv renders attributes as "k=v,k=v" in key order.
func kv(s attribute.Set) string {
	var parts []string
	for _, a := range s.ToSlice() {
		parts = append(parts, string(a.Key)+"="+a.Value.String())
	}
	return strings.Join(parts, ",")
}

// values returns a metric's points as attributes -> value.
func values(points []point) map[string]int64 {
	out := make(map[string]int64)
	for _, p := range points {
		out[kv(p.attrs)] = p.value
	}
	return out
}

func TestMetricsAndSpansThroughTheFake(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// Accepted, then a second copy of the same callback: a duplicate.
	accepted := f.generate(t, runwaytest.Script{Callback: runwaytest.CallbackFaults{Copies: 2}})
	res, err := f.c.WaitForResult(ctx, accepted)
	require.NoError(t, err)
	require.Equal(t, runway.SourceCallback, res.Source)

	// A callback with a bad signature.
	body := `{"code":200,"msg":"ok","data":{"task_id":"` + accepted + `","video_url":"https://example.com/v.mp4"}}`
	req, err := http.NewRequest(http.MethodPost, f.cbURL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	ts, _ := runway.SignCallback("not-the-key", accepted, time.Now())
	req.Header.Set(runway.HeaderWebhookTimestamp, ts)
	req.Header.Set(runway.HeaderWebhookSignature, "bm90IGEgc2lnbmF0dXJl")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The callback is lost: polling rescues the task.
	rescued := f.generate(t, runwaytest.Script{Callback: runwaytest.CallbackFaults{Drop: true}})
	res, err = f.c.WaitForResult(ctx, rescued, runway.WithPollInterval(time.Second))
	require.NoError(t, err)
	require.Equal(t, runway.SourcePoll, res.Source)

	// A moderation failure, by callback.
	moderated := f.generate(t, runwaytest.Script{Outcome: runwaytest.FailModeration()})
	_, err = f.c.WaitForResult(ctx, moderated)
	require.ErrorIs(t, err, runway.ErrModeration)

	// A download.
	var buf bytes.Buffer
	n, err := f.c.Download(ctx, res.VideoURL, &buf, runway.WithAllowPrivateHosts())
	require.NoError(t, err)
	require.Positive(t, n)

	m := f.collect(t)
	assert.Equal(t, map[string]int64{"runway.operation=generate,runway.submission.outcome=created": 3},
		values(m["runway.submissions"]))
	assert.Equal(t, map[string]int64{"runway.operation=generate,runway.submission.outcome=created": 3},
		values(m["runway.submission.duration"]))
	assert.Equal(t, map[string]int64{"runway.operation=generate": 3}, values(m["runway.submission.slot_wait"]))
	assert.Equal(t, map[string]int64{
		"http.response.status_code=200,runway.callback.outcome=accepted":                                 2,
		"http.response.status_code=200,runway.callback.outcome=duplicate":                                1,
		"http.response.status_code=401,runway.callback.outcome=refused,runway.callback.reason=signature": 1,
	}, values(m["runway.callbacks"]))
	assert.Equal(t, map[string]int64{
		"http.response.status_code=200,runway.callback.outcome=accepted":  2,
		"http.response.status_code=200,runway.callback.outcome=duplicate": 1,
		"http.response.status_code=401,runway.callback.outcome=refused":   1,
	}, values(m["runway.callback.duration"]))
	assert.Equal(t, map[string]int64{"runway.callback.processing.outcome=ok": 2},
		values(m["runway.callback.processing.duration"]))
	assert.Equal(t, map[string]int64{
		"runway.result.source=callback,runway.task.state=success":                           1,
		"runway.result.source=poll,runway.task.state=success":                               1,
		"runway.error.kind=moderation,runway.result.source=callback,runway.task.state=fail": 1,
	}, values(m["runway.results"]))
	assert.Equal(t, map[string]int64{
		"runway.result.source=callback,runway.task.state=success": 1,
		"runway.result.source=poll,runway.task.state=success":     1,
		"runway.result.source=callback,runway.task.state=fail":    1,
	}, values(m["runway.task.duration"]))
	assert.Equal(t, map[string]int64{
		"runway.result.source=callback,runway.wait.outcome=success": 1,
		"runway.result.source=poll,runway.wait.outcome=success":     1,
		"runway.result.source=callback,runway.wait.outcome=failed":  1,
	}, values(m["runway.wait.duration"]))
	waitPolls := m["runway.wait.polls"]
	assert.Equal(t, map[string]int64{"runway.wait.outcome=success": 2, "runway.wait.outcome=failed": 1}, values(waitPolls))
	assert.Equal(t, map[string]int64{"runway.poll.result=success": 1}, values(m["runway.polls"]),
		"only the rescued task was polled: the other waits found the callback's result")
	assert.Equal(t, map[string]int64{"runway.download.outcome=ok": n}, values(m["runway.download.bytes"]))
	assert.Equal(t, map[string]int64{"runway.download.outcome=ok": 1}, values(m["runway.download.duration"]))
	assert.Empty(t, m["runway.submission.retries"], "no submission was retried")

	// No attribute of any data point carries a task id, a URL, a host or a key.
	secrets := []string{accepted, rescued, moderated, f.srv.URL, f.cbURL, "127.0.0.1", "http:", "/",
		f.srv.APIKey, hmacKey, res.VideoURL}
	for name, points := range m {
		for _, p := range points {
			for _, a := range p.attrs.ToSlice() {
				v := a.Value.String()
				for _, s := range secrets {
					assert.NotContains(t, v, s, "metric %s attribute %s", name, a.Key)
				}
				assert.LessOrEqual(t, len(v), 16, "metric %s attribute %s=%q: low-cardinality values are short", name, a.Key, v)
			}
		}
	}

	// Spans: every SDK operation has one, with the task id; HTTP client spans nest inside.
	spans := f.spans.Ended()
	byID := make(map[trace.SpanID]sdktrace.ReadOnlySpan)
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	children := func(parent sdktrace.ReadOnlySpan, kind trace.SpanKind) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.SpanKind() == kind {
				out = append(out, s)
			}
		}
		return out
	}
	find := func(name, taskID string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() != name {
				continue
			}
			id := ""
			for _, a := range s.Attributes() {
				if a.Key == runwayotel.AttrTaskID {
					id = a.Value.AsString()
				}
			}
			if id == taskID {
				out = append(out, s)
			}
		}
		return out
	}
	for _, id := range []string{accepted, rescued, moderated} {
		gen := find("runway.generate", id)
		require.Len(t, gen, 1, "generate span for %s", id)
		client := children(gen[0], trace.SpanKindClient)
		require.Len(t, client, 1, "the HTTP client span of the submission nests in the generate span")
		assert.True(t, gen[0].Parent().IsValid() == false, "the generate span is a root here")

		wait := find("runway.wait", id)
		require.Len(t, wait, 1, "wait span for %s", id)
	}
	// The rescued task's wait has a poll child, itself the parent of an HTTP client span, and
	// records the result as an event.
	wait := find("runway.wait", rescued)[0]
	polls := children(wait, trace.SpanKindInternal)
	require.Len(t, polls, 1)
	assert.Equal(t, "runway.get_task", polls[0].Name())
	require.Len(t, children(polls[0], trace.SpanKindClient), 1)
	require.Len(t, wait.Events(), 1)
	assert.Equal(t, "runway.result", wait.Events()[0].Name)

	// Callback spans: children of otelhttp's server span, with the task id once verified.
	acceptedCallbacks := find("runway.callback", accepted)
	require.Len(t, acceptedCallbacks, 2, "the accepted delivery and its duplicate")
	for _, s := range acceptedCallbacks {
		parent, ok := byID[s.Parent().SpanID()]
		require.True(t, ok)
		assert.Equal(t, trace.SpanKindServer, parent.SpanKind())
	}
	refused := find("runway.callback", "")
	require.Len(t, refused, 1, "the refused callback's span has no task id")
	assert.Contains(t, refused[0].Attributes(), attribute.Int("http.response.status_code", http.StatusUnauthorized))
	require.Len(t, find("runway.callback", moderated), 1)

	downloads := find("runway.download", "")
	require.Len(t, downloads, 1)
	assert.Contains(t, downloads[0].Attributes(), runwayotel.AttrBytes.Int64(n))
	for _, s := range spans {
		if strings.HasPrefix(s.Name(), "runway.") {
			assert.Equal(t, runwayotel.ScopeName, s.InstrumentationScope().Name)
		}
	}
}

// Submission outcomes other than created, and retries, reach the metrics.
// TestJournalAndReconcileMetrics: with a journal, each submission is an add and each handled
// outcome a remove; Reconcile's visits are counted by outcome, with the age of the task.
func TestJournalAndReconcileMetrics(t *testing.T) {
	j, err := runway.NewFileJournal(t.TempDir() + "/journal")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, j.Close()) })
	f := newFixture(t, runway.WithJournal(j))

	f.generate(t, runwaytest.Script{}) // delivered by its callback: added, then removed
	lost := f.generate(t, runwaytest.Script{Callback: runwaytest.CallbackFaults{Drop: true}})

	delivered := make(chan string, 1)
	h := f.c.CallbackHandler(runway.WithResultFunc(func(_ context.Context, r *runway.Result) error {
		delivered <- r.TaskID
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Reconcile(ctx, runway.WithPollInterval(time.Second)) }()
	require.Equal(t, lost, <-delivered, "Reconcile delivers the task whose callback was lost")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	m := f.collect(t)
	assert.Equal(t, map[string]int64{
		"runway.journal.operation=add,runway.journal.outcome=ok":    2,
		"runway.journal.operation=remove,runway.journal.outcome=ok": 2,
	}, values(m["runway.journal.operations"]))
	assert.Equal(t, map[string]int64{"runway.reconcile.outcome=delivered": 1}, values(m["runway.reconcile.visits"]))
	assert.Equal(t, map[string]int64{"runway.reconcile.outcome=delivered": 1}, values(m["runway.reconcile.age"]))
	assert.Contains(t, values(m["runway.results"]), "runway.result.source=poll,runway.task.state=success")
	assert.Contains(t, values(m["runway.task.duration"]), "runway.result.source=poll,runway.task.state=success",
		"the task's duration comes from the journal's submission time")
}

func TestSubmissionOutcomeMetrics(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req := runway.GenerateRequest{Prompt: "a cat", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9}

	f.srv.InjectFault(runwaytest.PathGenerate, 2, runwaytest.RateLimited("0"))
	_, err := f.c.Generate(ctx, req)
	require.NoError(t, err)
	_, err = f.c.Generate(ctx, runway.GenerateRequest{Prompt: "no duration"})
	require.ErrorIs(t, err, runway.ErrInvalidRequest)
	f.srv.InjectFault(runwaytest.PathGenerate, 1, runwaytest.ServerError(http.StatusBadGateway))
	_, err = f.c.Generate(ctx, req)
	require.ErrorIs(t, err, runway.ErrOutcomeUnknown)

	m := f.collect(t)
	assert.Equal(t, map[string]int64{
		"runway.operation=generate,runway.submission.outcome=created": 1,
		"runway.operation=generate,runway.submission.outcome=refused": 1,
		"runway.operation=generate,runway.submission.outcome=unknown": 1,
	}, values(m["runway.submissions"]))
	assert.Equal(t, map[string]int64{"runway.operation=generate": 2}, values(m["runway.submission.retries"]))

	var failed int
	for _, s := range f.spans.Ended() {
		if s.Name() == "runway.generate" && s.Status().Code.String() == "Error" {
			failed++
		}
	}
	assert.Equal(t, 2, failed, "the refused and the unknown submissions end their spans with an error")
}

// A standalone handler reports through CallbackOption; spans it starts never end a span of
// the caller's.
func TestStandaloneHandler(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	inst, err := runwayotel.New(runwayotel.WithMeterProvider(mp), runwayotel.WithTracerProvider(tp))
	require.NoError(t, err)
	h := runway.NewCallbackHandler(inst.CallbackOption(),
		runway.WithResultFunc(func(context.Context, *runway.Result) error { return nil }))

	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	for _, r := range []*http.Request{
		httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil),
		httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader("{}")),
		httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 2<<20))),
	} {
		if r.Method == http.MethodPost {
			r.Header.Set("Content-Type", "application/json")
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	assert.True(t, parent.IsRecording(), "the caller's span is still open")
	parent.End()

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "runway.callbacks" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					got[kv(dp.Attributes)] = dp.Value
				}
			}
		}
	}
	assert.Equal(t, map[string]int64{
		"http.response.status_code=405,runway.callback.outcome=refused,runway.callback.reason=method":    1,
		"http.response.status_code=400,runway.callback.outcome=refused,runway.callback.reason=malformed": 1,
		"http.response.status_code=413,runway.callback.outcome=refused,runway.callback.reason=too_large": 1,
	}, got)
	var callbackSpans int
	for _, s := range sr.Ended() {
		if s.Name() == "runway.callback" {
			callbackSpans++
			assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
		}
	}
	assert.Equal(t, 3, callbackSpans)
}

// New falls back to the global providers.
func TestNewDefaults(t *testing.T) {
	inst, err := runwayotel.New(nil)
	require.NoError(t, err)
	o := inst.Observer()
	for name, set := range map[string]bool{
		"Start": o.Start != nil, "OnSubmit": o.OnSubmit != nil, "OnPoll": o.OnPoll != nil,
		"OnWaitEnd": o.OnWaitEnd != nil, "OnCallback": o.OnCallback != nil, "OnResult": o.OnResult != nil,
		"OnDownload": o.OnDownload != nil, "OnJournal": o.OnJournal != nil, "OnReconcile": o.OnReconcile != nil,
	} {
		assert.True(t, set, fmt.Sprintf("%s is wired", name))
	}
}

// TestUnknownStatesShareOneSeries: task states the SDK does not know ("x1", then "x2") are
// counted under the one runway.poll.result "unknown_state", and so is a Class outside the
// documented set (as an older SDK would report it): no series per value the API makes up.
func TestUnknownStatesShareOneSeries(t *testing.T) {
	f := &fixture{reader: sdkmetric.NewManualReader()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	inst, err := runwayotel.New(runwayotel.WithMeterProvider(mp))
	require.NoError(t, err)

	states := make(chan string, 3)
	states <- "x1"
	states <- "x2"
	states <- "generating"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, `{"code":200,"msg":"success","data":{"taskId":"t","state":%q}}`, <-states)
	}))
	defer srv.Close()
	c, err := runway.NewClient("k", runway.WithBaseURL(srv.URL), inst.ClientOption())
	require.NoError(t, err)
	defer c.Close()
	for range 3 {
		_, err := c.GetTask(context.Background(), "t")
		require.NoError(t, err)
	}
	inst.Observer().OnPoll(runway.PollEvent{Ctx: context.Background(), TaskID: "t", State: "x3", Class: "x3"})

	m := f.collect(t)
	assert.Equal(t, map[string]int64{
		"runway.poll.result=unknown_state": 3,
		"runway.poll.result=generating":    1,
	}, values(m["runway.polls"]))
}
