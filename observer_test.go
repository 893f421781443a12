package runway_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// obsKey marks the ctx returned by the test observer's Start, to check that end events carry
// it.
type obsKey struct{}

// eventLog is an Observer that keeps every event.
type eventLog struct {
	mu        sync.Mutex
	starts    []runway.Op
	submits   []runway.SubmitEvent
	polls     []runway.PollEvent
	waits     []runway.WaitEndEvent
	callbacks []runway.CallbackEvent
	results   []runway.ResultEvent
	downloads []runway.DownloadEvent
}

func (l *eventLog) observer() runway.Observer {
	return runway.Observer{
		Start: func(ctx context.Context, op runway.Op, _ string) context.Context {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.starts = append(l.starts, op)
			return context.WithValue(ctx, obsKey{}, op)
		},
		OnSubmit:   func(e runway.SubmitEvent) { l.mu.Lock(); l.submits = append(l.submits, e); l.mu.Unlock() },
		OnPoll:     func(e runway.PollEvent) { l.mu.Lock(); l.polls = append(l.polls, e); l.mu.Unlock() },
		OnWaitEnd:  func(e runway.WaitEndEvent) { l.mu.Lock(); l.waits = append(l.waits, e); l.mu.Unlock() },
		OnCallback: func(e runway.CallbackEvent) { l.mu.Lock(); l.callbacks = append(l.callbacks, e); l.mu.Unlock() },
		OnResult:   func(e runway.ResultEvent) { l.mu.Lock(); l.results = append(l.results, e); l.mu.Unlock() },
		OnDownload: func(e runway.DownloadEvent) { l.mu.Lock(); l.downloads = append(l.downloads, e); l.mu.Unlock() },
	}
}

// snapshot returns a copy of the log, taken under its lock.
func (l *eventLog) snapshot() eventLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return eventLog{
		starts: append([]runway.Op(nil), l.starts...), submits: append([]runway.SubmitEvent(nil), l.submits...),
		polls: append([]runway.PollEvent(nil), l.polls...), waits: append([]runway.WaitEndEvent(nil), l.waits...),
		callbacks: append([]runway.CallbackEvent(nil), l.callbacks...), results: append([]runway.ResultEvent(nil), l.results...),
		downloads: append([]runway.DownloadEvent(nil), l.downloads...),
	}
}

const obsHMACKey = "observer-webhook-secret"

// obsFlow is the fake API, a client with the test observer and the client's callback handler
// on loopback, tasks stepped by hand.
type obsFlow struct {
	srv   *runwaytest.Server
	c     *runway.Client
	log   *eventLog
	cbURL string
	h     http.Handler
}

func newObsFlow(t *testing.T, opts ...runway.Option) *obsFlow {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // registered first, so it runs last
	srv := runwaytest.NewServer(runwaytest.WithHMACKey(obsHMACKey), runwaytest.WithManualSteps())
	t.Cleanup(srv.Close)
	f := &obsFlow{srv: srv, log: &eventLog{}}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := runway.NewClient(srv.APIKey, append([]runway.Option{runway.WithBaseURL(srv.URL), runway.WithHTTPClient(hc),
		runway.WithRetryBackoff(time.Millisecond, time.Millisecond), runway.WithObserver(f.log.observer())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	f.c = c
	f.h = c.CallbackHandler(runway.WithHMACKey(obsHMACKey),
		runway.WithResultFunc(func(context.Context, *runway.Result) error { return nil }))
	ts := httptest.NewServer(f.h)
	t.Cleanup(ts.Close)
	f.cbURL = ts.URL + "/kie/callback"
	return f
}

func (f *obsFlow) generate(t *testing.T, script runwaytest.Script) string {
	t.Helper()
	f.srv.ScriptNext(1, script)
	id, err := f.c.Generate(context.Background(), runway.GenerateRequest{Prompt: "a cat surfing", Duration: 5,
		Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9, CallBackURL: f.cbURL})
	require.NoError(t, err)
	return id
}

func TestObserverSubmissionOutcomes(t *testing.T) {
	f := newObsFlow(t)
	ctx := context.Background()
	req := runway.GenerateRequest{Prompt: "a cat", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9}

	f.srv.InjectFault(runwaytest.PathGenerate, 1, runwaytest.RateLimited("0"))
	id, err := f.c.Generate(ctx, req)
	require.NoError(t, err)
	_, err = f.c.Generate(ctx, runway.GenerateRequest{Prompt: "no duration"})
	require.Error(t, err)
	f.srv.InjectFault(runwaytest.PathGenerate, 1, runwaytest.BodyError(401, "unauthorized"))
	_, err = f.c.Generate(ctx, req)
	require.Error(t, err)
	f.srv.InjectFault(runwaytest.PathGenerate, 1, runwaytest.ServerError(http.StatusInternalServerError))
	_, err = f.c.Generate(ctx, req)
	require.ErrorIs(t, err, runway.ErrOutcomeUnknown)
	_, err = f.srv.Finish(id)
	require.NoError(t, err)
	_, err = f.c.Extend(ctx, runway.ExtendRequest{TaskID: id, Prompt: "more", Quality: runway.Quality720p})
	require.NoError(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.c.GenerateAleph(cctx, runway.AlephRequest{Prompt: "x", VideoURL: "https://example.com/v.mp4"})
	require.Error(t, err)

	got := f.log.snapshot().submits
	require.Len(t, got, 6)
	want := []struct {
		op      runway.Op
		outcome runway.SubmitOutcome
		retries int
	}{
		{runway.OpGenerate, runway.SubmitCreated, 1},
		{runway.OpGenerate, runway.SubmitRefused, 0},
		{runway.OpGenerate, runway.SubmitRejected, 0},
		{runway.OpGenerate, runway.SubmitUnknown, 0},
		{runway.OpExtend, runway.SubmitCreated, 0},
		{runway.OpGenerateAleph, runway.SubmitFailed, 0},
	}
	for i, w := range want {
		e := got[i]
		assert.Equal(t, w.op, e.Op, i)
		assert.Equal(t, w.outcome, e.Outcome, i)
		assert.Equal(t, w.retries, e.Retries, i)
		assert.Equal(t, w.op, e.Ctx.Value(obsKey{}), "event %d carries the ctx Start returned", i)
		assert.Equal(t, e.Outcome == runway.SubmitCreated, e.Err == nil, i)
		assert.Equal(t, e.Outcome == runway.SubmitCreated, e.TaskID != "", i)
		assert.False(t, e.Start.IsZero(), i)
		assert.GreaterOrEqual(t, e.Duration, time.Duration(0), i)
	}
	assert.Equal(t, id, got[0].TaskID)
}

func TestObserverSubmissionSlotWait(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	synctest.Test(t, func(t *testing.T) {
		ln, hc := runway.NewPipeHost()
		srv := runwaytest.NewServer(runwaytest.WithListener(ln), runwaytest.WithManualSteps())
		defer srv.Close()
		defer hc.CloseIdleConnections()
		log := &eventLog{}
		c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithHTTPClient(hc),
			runway.WithSubmitRateLimit(1, time.Minute), runway.WithObserver(log.observer()))
		require.NoError(t, err)
		defer func() { _ = c.Close() }()
		req := runway.GenerateRequest{Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p,
			AspectRatio: runway.AspectRatio16x9, CallBackURL: "http://127.0.0.1:9/cb"}
		for range 2 {
			_, err := c.Generate(context.Background(), req)
			require.NoError(t, err)
		}
		got := log.snapshot().submits
		require.Len(t, got, 2)
		assert.Zero(t, got[0].SlotWait)
		// The second waited a full window (plus the limiter's margin) for its slot, and its
		// duration includes that wait.
		assert.GreaterOrEqual(t, got[1].SlotWait, time.Minute)
		assert.GreaterOrEqual(t, got[1].Duration, got[1].SlotWait)
	})
}

func TestObserverCallbackAndResultEvents(t *testing.T) {
	f := newObsFlow(t)
	ctx := context.Background()

	// Accepted, then a second copy: duplicate.
	id := f.generate(t, runwaytest.Script{Callback: runwaytest.CallbackFaults{Copies: 2}})
	_, err := f.srv.Finish(id)
	require.NoError(t, err)
	st, err := f.srv.WaitCallback(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 2, st.Delivered)
	res, err := f.c.WaitForResult(ctx, id)
	require.NoError(t, err)
	require.Equal(t, runway.SourceCallback, res.Source)

	// A bad signature.
	body := `{"code":200,"msg":"ok","data":{"task_id":"` + id + `","video_url":"https://example.com/v.mp4"}}`
	req := httptest.NewRequest(http.MethodPost, "/kie/callback", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(runway.HeaderWebhookTimestamp, "1769670760")
	req.Header.Set(runway.HeaderWebhookSignature, "bm90IGEgc2lnbmF0dXJl")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code)

	l := f.log.snapshot()
	require.Len(t, l.callbacks, 3)
	acc, dup, bad := l.callbacks[0], l.callbacks[1], l.callbacks[2]
	assert.Equal(t, http.StatusOK, acc.Status)
	assert.Empty(t, acc.Reason)
	assert.False(t, acc.Duplicate)
	assert.Equal(t, runway.ProcessOK, acc.Processed)
	assert.Equal(t, id, acc.TaskID)
	assert.Equal(t, runway.OpCallback, acc.Ctx.Value(obsKey{}))
	assert.GreaterOrEqual(t, acc.Duration, acc.ProcessDuration)

	assert.Equal(t, http.StatusOK, dup.Status)
	assert.True(t, dup.Duplicate)
	assert.Equal(t, runway.ProcessNone, dup.Processed)

	assert.Equal(t, http.StatusUnauthorized, bad.Status)
	assert.Equal(t, runway.CallbackBadSignature, bad.Reason)
	assert.Empty(t, bad.TaskID, "an unverified task id is not reported")

	require.Len(t, l.results, 1, "the duplicate is no new result")
	r := l.results[0]
	assert.Equal(t, id, r.TaskID)
	assert.Equal(t, runway.SourceCallback, r.Source)
	assert.Equal(t, runway.StateSuccess, r.State)
	assert.Empty(t, r.ErrorKind)
	assert.Positive(t, r.SinceSubmit, "this client submitted the task: the time since is known")
	assert.Equal(t, runway.OpCallback, r.Ctx.Value(obsKey{}), "the result carries the callback's ctx")

	require.Len(t, l.waits, 1)
	w := l.waits[0]
	assert.Equal(t, runway.WaitSuccess, w.Outcome)
	assert.Equal(t, runway.SourceCallback, w.Source)
	assert.Zero(t, w.Polls, "the kept result answered without a poll")
	assert.Equal(t, runway.OpWait, w.Ctx.Value(obsKey{}))
}

func TestObserverPollRescueAndModeration(t *testing.T) {
	f := newObsFlow(t)
	ctx := context.Background()

	id := f.generate(t, runwaytest.Script{Callback: runwaytest.CallbackFaults{Drop: true}})
	_, err := f.srv.Finish(id)
	require.NoError(t, err)
	res, err := f.c.WaitForResult(ctx, id)
	require.NoError(t, err)
	require.Equal(t, runway.SourcePoll, res.Source)

	bad := f.generate(t, runwaytest.Script{Outcome: runwaytest.FailModeration(), Callback: runwaytest.CallbackFaults{Drop: true}})
	_, err = f.srv.Finish(bad)
	require.NoError(t, err)
	_, err = f.c.WaitForResult(ctx, bad)
	require.ErrorIs(t, err, runway.ErrModeration)

	f.srv.InjectFault(runwaytest.PathRecordDetail, 1, runwaytest.BodyError(401, "unauthorized"))
	_, err = f.c.GetTask(ctx, id)
	require.ErrorIs(t, err, runway.ErrUnauthorized)
	f.srv.InjectFault(runwaytest.PathRecordDetail, 2, runwaytest.ServerError(http.StatusServiceUnavailable))
	_, err = f.c.GetTask(ctx, id)
	require.NoError(t, err)

	l := f.log.snapshot()
	assert.Empty(t, l.callbacks)
	require.Len(t, l.results, 2)
	assert.Equal(t, runway.SourcePoll, l.results[0].Source)
	assert.Equal(t, runway.StateSuccess, l.results[0].State)
	assert.Equal(t, runway.SourcePoll, l.results[1].Source)
	assert.Equal(t, runway.StateFail, l.results[1].State)
	assert.Equal(t, runway.KindModeration, l.results[1].ErrorKind)

	require.Len(t, l.waits, 2)
	assert.Equal(t, runway.WaitSuccess, l.waits[0].Outcome)
	assert.Equal(t, runway.SourcePoll, l.waits[0].Source)
	assert.Equal(t, 1, l.waits[0].Polls)
	assert.Equal(t, runway.WaitFailed, l.waits[1].Outcome)

	require.Len(t, l.polls, 4)
	assert.Equal(t, "success", l.polls[0].Class)
	assert.Equal(t, runway.StateSuccess, l.polls[0].State)
	assert.Equal(t, id, l.polls[0].TaskID)
	assert.Equal(t, runway.OpGetTask, l.polls[0].Ctx.Value(obsKey{}))
	assert.Equal(t, "fail", l.polls[1].Class)
	assert.Equal(t, "unauthorized", l.polls[2].Class)
	assert.Error(t, l.polls[2].Err)
	assert.Equal(t, "success", l.polls[3].Class, "a details request that succeeded after retries")
	assert.Equal(t, 2, l.polls[3].Retries)
	// Start ran for every operation, in order, and its wait nests the poll.
	assert.Equal(t, []runway.Op{runway.OpGenerate, runway.OpWait, runway.OpGetTask,
		runway.OpGenerate, runway.OpWait, runway.OpGetTask, runway.OpGetTask, runway.OpGetTask}, l.starts)
}

func TestObserverDownload(t *testing.T) {
	f := newObsFlow(t)
	ctx := context.Background()
	id := f.generate(t, runwaytest.Script{Callback: runwaytest.CallbackFaults{Drop: true}})
	_, err := f.srv.Finish(id)
	require.NoError(t, err)
	task, err := f.c.GetTask(ctx, id)
	require.NoError(t, err)

	var buf bytes.Buffer
	n, err := f.c.Download(ctx, task.VideoURL, &buf, runway.WithAllowPrivateHosts())
	require.NoError(t, err)
	_, err = f.c.Download(ctx, task.VideoURL, &buf) // a loopback host is refused without the option
	require.Error(t, err)

	res := task.Result()
	_, err = f.c.SaveResult(ctx, res, t.TempDir(), runway.WithAllowPrivateHosts())
	require.NoError(t, err)

	l := f.log.snapshot()
	require.Len(t, l.downloads, 4, "two downloads, then SaveResult's video and cover")
	for _, e := range l.downloads[2:] {
		assert.Equal(t, runway.DownloadOK, e.Outcome)
		assert.Equal(t, id, e.TaskID, "SaveResult's downloads carry the task id")
	}
	ok, failed := l.downloads[0], l.downloads[1]
	assert.Empty(t, ok.TaskID, "Download has a URL, not a task")
	assert.Equal(t, runway.DownloadOK, ok.Outcome)
	assert.Equal(t, n, ok.Bytes)
	assert.Equal(t, 1, ok.Attempts)
	assert.NoError(t, ok.Err)
	assert.Equal(t, runway.OpDownload, ok.Ctx.Value(obsKey{}))
	assert.Equal(t, runway.DownloadFailed, failed.Outcome)
	assert.Zero(t, failed.Bytes)
	assert.Error(t, failed.Err)
}

// A panicking observer is contained: the SDK goes on, and each kind's first panic is logged.
func TestObserverPanicContained(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedBuffer{&mu, &logs}, nil))
	boom := func() { panic("observer bug") }
	o := runway.Observer{
		Start:      func(context.Context, runway.Op, string) context.Context { boom(); return nil },
		OnSubmit:   func(runway.SubmitEvent) { boom() },
		OnPoll:     func(runway.PollEvent) { boom() },
		OnWaitEnd:  func(runway.WaitEndEvent) { boom() },
		OnCallback: func(runway.CallbackEvent) { boom() },
		OnResult:   func(runway.ResultEvent) { boom() },
		OnDownload: func(runway.DownloadEvent) { boom() },
	}
	srv := runwaytest.NewServer(runwaytest.WithHMACKey(obsHMACKey))
	defer srv.Close()
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithObserver(o), runway.WithLogger(logger))
	require.NoError(t, err)
	defer c.Close()
	ts := httptest.NewServer(c.CallbackHandler(runway.WithHMACKey(obsHMACKey)))
	defer ts.Close()
	ctx := context.Background()
	for range 2 {
		id, err := c.Generate(ctx, runway.GenerateRequest{Prompt: "a cat", Duration: 5, Quality: runway.Quality720p,
			AspectRatio: runway.AspectRatio16x9, CallBackURL: ts.URL})
		require.NoError(t, err)
		st, err := srv.WaitCallback(ctx, id)
		require.NoError(t, err)
		require.Equal(t, 1, st.Delivered, "the handler answered 200 despite the observer")
		res, err := c.WaitForResult(ctx, id)
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = c.Download(ctx, res.VideoURL, &buf, runway.WithAllowPrivateHosts())
		require.NoError(t, err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, kind := range []string{"start", "submit", "wait", "callback", "result", "download"} {
		assert.Equal(t, 1, strings.Count(out, "kind="+kind+" "), "kind %s logged once:\n%s", kind, out)
	}
	assert.Contains(t, out, "level=ERROR")
	assert.Contains(t, out, "observer bug")
}

// lockedBuffer serialises writes from the handler's goroutines and the test's.
type lockedBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (b lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// A standalone handler reports to its own observer; a client's handler given one uses it
// instead of the client's.
func TestCallbackObserverOption(t *testing.T) {
	var own, client eventLog
	c, err := runway.NewClient("key", runway.WithObserver(client.observer()))
	require.NoError(t, err)
	defer c.Close()
	for _, h := range []http.Handler{
		runway.NewCallbackHandler(runway.WithCallbackObserver(own.observer()),
			runway.WithResultFunc(func(context.Context, *runway.Result) error { return nil })),
		c.CallbackHandler(runway.WithCallbackObserver(own.observer())),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	}
	l := own.snapshot()
	require.Len(t, l.callbacks, 2)
	for _, e := range l.callbacks {
		assert.Equal(t, runway.CallbackBadMethod, e.Reason)
		assert.Equal(t, http.StatusMethodNotAllowed, e.Status)
	}
	assert.Empty(t, client.snapshot().callbacks)

	rec := httptest.NewRecorder()
	c.CallbackHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	require.Equal(t, http.StatusUnsupportedMediaType, rec.Code)
	got := client.snapshot().callbacks
	require.Len(t, got, 1, "a client's handler inherits the client's observer")
	assert.Equal(t, runway.CallbackBadMediaType, got[0].Reason)
}

// A delivery answered 503 over budget reports its result when the processing ends later.
func TestObserverResultAfterOverBudgetAnswer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	results := make(chan runway.ResultEvent, 1)
	var log eventLog
	o := log.observer()
	o.OnResult = func(e runway.ResultEvent) { results <- e }
	release := make(chan struct{})
	h := runway.NewCallbackHandler(runway.WithCallbackObserver(o), runway.WithResultTimeout(time.Millisecond),
		runway.WithResultFunc(func(context.Context, *runway.Result) error { <-release; return nil }))

	const id = "ee603959-debb-48d1-98c4-000000000001"
	body := `{"code":200,"msg":"ok","data":{"task_id":"` + id + `","video_id":"v","video_url":"https://example.com/v.mp4","image_url":""}}`
	req := httptest.NewRequest(http.MethodPost, "/kie/callback", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req) // the func blocks: the budget passes first
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)

	cb := log.snapshot().callbacks
	require.Len(t, cb, 1)
	assert.Equal(t, runway.CallbackUnavailable, cb[0].Reason)
	assert.Equal(t, runway.ProcessRunning, cb[0].Processed)
	select {
	case e := <-results:
		t.Fatalf("result reported before the processing ended: %+v", e)
	default:
	}

	close(release)
	e := <-results
	assert.Equal(t, id, e.TaskID)
	assert.Equal(t, runway.SourceCallback, e.Source)
	assert.Zero(t, e.SinceSubmit, "a standalone handler knows no submission times")
}

// TestObserverPollClassUnknownState: states the SDK does not know (here "x1", then "x2", and
// an Aleph successFlag it has no meaning for) reach PollEvent.State raw, but Class is the one
// value "unknown_state", so a metric labelled by Class gets no series per unknown value.
func TestObserverPollClassUnknownState(t *testing.T) {
	t.Parallel()
	bodies := []string{
		`{"code":200,"msg":"success","data":{"taskId":"t","state":"x1"}}`,
		`{"code":200,"msg":"success","data":{"taskId":"t","state":"x2"}}`,
		`{"code":200,"msg":"success","data":{"taskId":"t","successFlag":7}}`,
		`{"code":200,"msg":"success","data":{"taskId":"t","state":"generating"}}`,
	}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write([]byte(bodies[0]))
		bodies = bodies[1:]
	}))
	defer srv.Close()
	var log eventLog
	c, err := runway.NewClient("k", runway.WithBaseURL(srv.URL), runway.WithObserver(log.observer()))
	require.NoError(t, err)
	defer c.Close()
	for range 2 {
		_, err = c.GetTask(t.Context(), "t")
		require.NoError(t, err)
	}
	_, err = c.GetAlephTask(t.Context(), "t")
	require.NoError(t, err)
	_, err = c.GetTask(t.Context(), "t")
	require.NoError(t, err)

	got := log.snapshot().polls
	require.Len(t, got, 4)
	var states, classes []string
	for _, e := range got {
		states, classes = append(states, string(e.State)), append(classes, e.Class)
	}
	assert.Equal(t, []string{"x1", "x2", "successFlag:7", "generating"}, states)
	assert.Equal(t, []string{"unknown_state", "unknown_state", "unknown_state", "generating"}, classes)
}
