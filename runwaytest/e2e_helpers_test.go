package runwaytest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// e2eHMACKey signs the fake's callbacks and is checked by the client's handler.
const e2eHMACKey = "e2e-webhook-secret"

// e2e is the whole flow as a user runs it: the fake Kie API, a real client, the client's
// CallbackHandler mounted on a loopback mux with HMAC checks on both sides, and a result func
// that counts its calls per task id.
type e2e struct {
	srv   *runwaytest.Server
	c     *runway.Client
	cbURL string

	// failFirst, when set before any callback, makes the result func fail the first call for
	// the task ids it picks, as a flaky database would.
	failFirst func(id string) bool

	mu    sync.Mutex
	calls map[string]int // successful result-func calls
	tries map[string]int // all result-func calls
}

// newE2E starts the flow; everything stops at the end of the test.
func newE2E(t *testing.T, srvOpts []runwaytest.Option, clientOpts []runway.Option, handlerOpts ...runway.CallbackOption) *e2e {
	t.Helper()
	srv := start(t, append([]runwaytest.Option{runwaytest.WithHMACKey(e2eHMACKey)}, srvOpts...)...)
	e := &e2e{srv: srv, c: client(t, srv, clientOpts...), calls: make(map[string]int), tries: make(map[string]int)}
	mux := http.NewServeMux()
	mux.Handle("POST /kie/callback", e.c.CallbackHandler(append([]runway.CallbackOption{
		runway.WithHMACKey(e2eHMACKey),
		runway.WithResultFunc(e.record),
	}, handlerOpts...)...))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	e.cbURL = ts.URL + "/kie/callback"
	return e
}

// errFlaky is the result func's scripted failure.
var errFlaky = errors.New("flaky result func")

// record is the result func: it counts deliveries per task id.
func (e *e2e) record(_ context.Context, r *runway.Result) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tries[r.TaskID]++
	if e.failFirst != nil && e.tries[r.TaskID] == 1 && e.failFirst(r.TaskID) {
		return errFlaky
	}
	e.calls[r.TaskID]++
	return nil
}

// callsFor returns how many times the result func ran for id.
func (e *e2e) callsFor(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[id]
}

// submit scripts prompt and submits a generation with the handler's callback URL.
func (e *e2e) submit(t *testing.T, ctx context.Context, prompt string, sc runwaytest.Script) string {
	t.Helper()
	e.srv.ScriptPrompt(prompt, sc)
	id, err := e.c.Generate(ctx, e2eRequest(prompt, e.cbURL))
	require.NoError(t, err)
	return id
}

func e2eRequest(prompt, callback string) runway.GenerateRequest {
	return runway.GenerateRequest{
		Prompt:      prompt,
		Duration:    5,
		Quality:     runway.Quality720p,
		AspectRatio: runway.AspectRatio16x9,
		CallBackURL: callback,
	}
}

// waitResult is what a WaitForResult call returned.
type waitResult struct {
	res *runway.Result
	err error
}

// waitAsync runs WaitForResult in a goroutine; the channel gets its answer.
func (e *e2e) waitAsync(ctx context.Context, id string, opts ...runway.WaitOption) <-chan waitResult {
	out := make(chan waitResult, 1)
	go func() {
		res, err := e.c.WaitForResult(ctx, id, opts...)
		out <- waitResult{res, err}
	}()
	return out
}

// recv returns the wait's answer or fails the test when ctx ends first.
func recv(t *testing.T, ctx context.Context, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		t.Fatal("WaitForResult did not return")
		return waitResult{}
	}
}

// finishWhileWaiting starts a WaitForResult on id, lets its first poll land (the waiter is then
// blocked), finishes the manual task, and returns the wait's answer.
func (e *e2e) finishWhileWaiting(t *testing.T, ctx context.Context, id string, opts ...runway.WaitOption) waitResult {
	t.Helper()
	done := e.waitAsync(ctx, id, opts...)
	_, err := e.srv.WaitRequests(ctx, runwaytest.PathRecordDetail, 1)
	require.NoError(t, err)
	_, err = e.srv.Finish(id)
	require.NoError(t, err)
	return recv(t, ctx, done)
}

// manual is a script's step setting for a task the test finishes by hand.
var manual = &runwaytest.Steps{Manual: true}

// polls counts the details requests answered so far for the Runway and Aleph endpoints.
func polls(srv *runwaytest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Path == runwaytest.PathRecordDetail || r.Path == runwaytest.PathAlephRecordInfo {
			n++
		}
	}
	return n
}

// minutePolls makes the wait's second poll a minute away, so that anything that ends the
// wait sooner than that came from a callback.
var minutePolls = runway.WithPollInterval(time.Minute)

// secondPolls is the shortest poll interval WaitForResult allows.
var secondPolls = runway.WithPollInterval(time.Second)
