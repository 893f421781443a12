package runwaytest_test

//lint:file-ignore SA1019 these tests cover Aleph, which is deprecated but must keep working for existing tasks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// TestE2EWrongHMACKey: a handler configured with another key refuses every signed delivery
// (401), the fake retries and gives up, the result func never runs, and the waiter still gets
// the result by polling.
func TestE2EWrongHMACKey(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	srv := start(t, runwaytest.WithHMACKey("the key Kie signs with"))
	c := client(t, srv)
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("POST /kie/callback", c.CallbackHandler(
		runway.WithHMACKey("a stale key"),
		runway.WithResultFunc(func(_ context.Context, _ *runway.Result) error { calls.Add(1); return nil }),
	))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	srv.ScriptPrompt("signed", runwaytest.Script{Steps: manual})
	id, err := c.Generate(ctx, e2eRequest("signed", ts.URL+"/kie/callback"))
	require.NoError(t, err)

	done := make(chan waitResult, 1)
	go func() {
		res, err := c.WaitForResult(ctx, id, secondPolls)
		done <- waitResult{res, err}
	}()
	_, err = srv.WaitRequests(ctx, runwaytest.PathRecordDetail, 1)
	require.NoError(t, err)
	_, err = srv.Finish(id)
	require.NoError(t, err)
	st, err := srv.WaitCallback(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, 1, st.GaveUp)
	require.Len(t, st.Attempts, 4, "the first attempt and 3 retries")
	for _, a := range st.Attempts {
		assert.Equal(t, http.StatusUnauthorized, a.StatusCode)
	}

	got := recv(t, ctx, done)
	require.NoError(t, got.err)
	assert.Equal(t, runway.SourcePoll, got.res.Source)
	assert.Zero(t, calls.Load())
}

// TestE2ERefetchThroughFaults: with WithRefetch the handler fetches the task from the API
// before delivering. A fetch that fails answers 500 and releases the task id, the fake's retry
// is processed, and the result func runs once with what the API reported.
func TestE2ERefetchThroughFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		aleph bool
		fault runwaytest.APIFault
		n     int // faults on the details endpoint after the waiter's first poll
	}{
		{name: "no fault"},
		{name: "503 past the client's retries", fault: runwaytest.ServerError(http.StatusServiceUnavailable), n: 5},
		// net/http re-sends a GET once by itself when a reused connection resets, so each of
		// the client's 5 attempts may take two resets.
		{name: "resets past the client's retries", fault: runwaytest.ConnectionReset(), n: 10},
		{name: "aleph, HTML page past the client's retries", aleph: true, fault: runwaytest.NonJSON(http.StatusBadGateway), n: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, nil, nil, runway.WithRefetch())
			srv, c := e.srv, e.c

			sc := runwaytest.Script{Steps: manual}
			path := runwaytest.PathRecordDetail
			var id string
			if tt.aleph {
				path = runwaytest.PathAlephRecordInfo
				srv.ScriptPrompt("aleph", sc)
				var err error
				id, err = c.GenerateAleph(ctx, runway.AlephRequest{Prompt: "aleph", VideoURL: "https://example.com/in.mp4", CallBackURL: e.cbURL})
				require.NoError(t, err)
			} else {
				id = e.submit(t, ctx, "refetched", sc)
			}
			done := e.waitAsync(ctx, id, minutePolls)
			_, err := srv.WaitRequests(ctx, path, 1)
			require.NoError(t, err)
			srv.InjectFault(path, tt.n, tt.fault)
			_, err = srv.Finish(id)
			require.NoError(t, err)

			got := recv(t, ctx, done)
			require.NoError(t, got.err)
			assert.Equal(t, runway.SourceCallback, got.res.Source)
			info, _ := srv.Task(id)
			assert.Equal(t, info.VideoURL, got.res.VideoURL)
			st, err := srv.WaitCallback(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, 1, st.Delivered)
			assert.Equal(t, 1, e.callsFor(id))
			if tt.n > 0 {
				assert.Equal(t, http.StatusInternalServerError, st.Attempts[0].StatusCode, "the failed fetch answers 500")
			}
		})
	}
}

// TestE2EExtend: an extension's callback (success, or a failure carrying only the task id)
// reaches its waiter like a generation's, and the failure is classified.
func TestE2EExtend(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	parent := e.submit(t, ctx, "first part", runwaytest.Script{Callback: runwaytest.CallbackFaults{Early: true}})

	for _, o := range []runwaytest.Outcome{runwaytest.Success(), runwaytest.FailConcurrency()} {
		e.srv.ScriptPrompt("and then", runwaytest.Script{Outcome: o, Steps: manual})
		id, err := e.c.Extend(ctx, runway.ExtendRequest{TaskID: parent, Prompt: "and then", Quality: runway.Quality720p, CallBackURL: e.cbURL})
		require.NoError(t, err)
		before := polls(e.srv)
		done := e.waitAsync(ctx, id, minutePolls)
		_, err = e.srv.WaitRequests(ctx, runwaytest.PathRecordDetail, before+1)
		require.NoError(t, err)
		_, err = e.srv.Finish(id)
		require.NoError(t, err)

		got := recv(t, ctx, done)
		assert.Equal(t, runway.SourceCallback, got.res.Source)
		if o.Failed() {
			assert.ErrorIs(t, got.err, runway.ErrConcurrency)
		} else {
			require.NoError(t, got.err)
			info, _ := e.srv.Task(id)
			assert.Equal(t, parent, info.ParentID)
			assert.Equal(t, info.VideoURL, got.res.VideoURL)
		}
		_, err = e.srv.WaitCallback(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, 1, e.callsFor(id))
	}
}

// TestE2EAlephPolling: an Aleph task whose callback is lost is found on the Aleph details
// endpoint, failures included (errorCode as a string); an unknown successFlag ends the wait
// with an error naming it.
func TestE2EAlephPolling(t *testing.T) {
	t.Parallel()
	lost := runwaytest.CallbackFaults{Drop: true}
	tests := []struct {
		name    string
		script  runwaytest.Script
		wantErr error
	}{
		{name: "success", script: runwaytest.Script{Callback: lost}},
		{name: "failure, errorCode as string", wantErr: runway.ErrModeration, script: runwaytest.Script{
			Outcome: runwaytest.FailModeration(), Callback: lost, Poll: runwaytest.PollFaults{FailCodeAsString: true}}},
		{name: "unknown successFlag", wantErr: runway.ErrUnknownState, script: runwaytest.Script{
			Callback: lost, Poll: runwaytest.PollFaults{UnknownState: "paused"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, nil, nil)
			tt.script.Steps = manual
			e.srv.ScriptPrompt("aleph", tt.script)
			id, err := e.c.GenerateAleph(ctx, runway.AlephRequest{Prompt: "aleph", VideoURL: "https://example.com/in.mp4", CallBackURL: e.cbURL})
			require.NoError(t, err)
			_, err = e.srv.Finish(id)
			require.NoError(t, err)

			res, err := e.c.WaitForResult(ctx, id, minutePolls)
			reqs := e.srv.Requests()
			require.Len(t, reqs, 2)
			assert.Equal(t, runwaytest.PathAlephRecordInfo, reqs[1].Path)
			if tt.wantErr == nil {
				require.NoError(t, err)
				info, _ := e.srv.Task(id)
				assert.Equal(t, info.VideoURL, res.VideoURL)
				assert.Equal(t, runway.SourcePoll, res.Source)
				return
			}
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
}

// TestE2EClockSkew: Kie's clock drifting from ours within the handler's tolerance (5 min)
// still delivers; beyond it every attempt is refused as a replay (401) and polling rescues the
// result.
func TestE2EClockSkew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		skew       time.Duration
		wantSource runway.Source
	}{
		{"4 min behind", -4 * time.Minute, runway.SourceCallback},
		{"4 min ahead", 4 * time.Minute, runway.SourceCallback},
		{"6 min behind", -6 * time.Minute, runway.SourcePoll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, []runwaytest.Option{runwaytest.WithClock(func() time.Time { return time.Now().Add(tt.skew) })}, nil)
			id := e.submit(t, ctx, "skewed", runwaytest.Script{Steps: manual})
			interval := minutePolls
			if tt.wantSource == runway.SourcePoll {
				interval = secondPolls
			}
			got := e.finishWhileWaiting(t, ctx, id, interval)
			require.NoError(t, got.err)
			assert.Equal(t, tt.wantSource, got.res.Source)
			st, err := e.srv.WaitCallback(ctx, id)
			require.NoError(t, err)
			if tt.wantSource == runway.SourcePoll {
				assert.Equal(t, 1, st.GaveUp)
				assert.Equal(t, http.StatusUnauthorized, st.Attempts[0].StatusCode)
				assert.Zero(t, e.callsFor(id))
			} else {
				assert.Equal(t, 1, e.callsFor(id))
			}
		})
	}
}
