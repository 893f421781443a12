package runwaytest_test

//lint:file-ignore SA1019 these tests cover Aleph, which is deprecated but must keep working for existing tasks

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// TestE2ECallbackWakesBlockedWait: a signed callback POSTed by the fake into the client's
// real CallbackHandler wakes a WaitForResult blocked between polls; the wait sent exactly one
// GET (the immediate first poll) and the result func ran once.
func TestE2ECallbackWakesBlockedWait(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "wake the waiter", runwaytest.Script{Steps: manual})

	got := e.finishWhileWaiting(t, ctx, id, minutePolls)
	require.NoError(t, got.err)
	assert.Equal(t, runway.SourceCallback, got.res.Source)
	assert.Equal(t, id, got.res.TaskID)
	info, _ := e.srv.Task(id)
	assert.Equal(t, info.VideoURL, got.res.VideoURL)
	assert.Equal(t, 1, polls(e.srv), "exactly one GET")
	assert.Equal(t, 1, e.callsFor(id))
	st, err := e.srv.WaitCallback(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Delivered)
	assert.Equal(t, http200(st.Attempts), len(st.Attempts), "every attempt answered 200")
}

// http200 counts the attempts answered 200.
func http200(as []runwaytest.CallbackAttempt) int {
	n := 0
	for _, a := range as {
		if a.StatusCode == 200 {
			n++
		}
	}
	return n
}

// TestE2ECallbackFaults runs each callback fault through submit -> handler -> wait with a
// waiter blocked before the task finishes: nothing lost (the wait returns the result, from the
// callback, or from polling when the callback is lost), nothing processed twice (the result
// func runs once per delivered task however many copies arrive), every copy answered 200.
func TestE2ECallbackFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cb         runwaytest.CallbackFaults
		aleph      bool // submit through GenerateAleph (Aleph callback and details endpoint)
		wantSource runway.Source
		wantCalls  int
		wantPosts  int
	}{
		{name: "normal", wantSource: runway.SourceCallback, wantCalls: 1, wantPosts: 1},
		{name: "dropped, rescued by polling", cb: runwaytest.CallbackFaults{Drop: true},
			wantSource: runway.SourcePoll, wantCalls: 0, wantPosts: 0},
		{name: "duplicated concurrently", cb: runwaytest.CallbackFaults{Copies: 4, Concurrent: true},
			wantSource: runway.SourceCallback, wantCalls: 1, wantPosts: 4},
		{name: "duplicated in sequence", cb: runwaytest.CallbackFaults{Copies: 3},
			wantSource: runway.SourceCallback, wantCalls: 1, wantPosts: 3},
		{name: "delayed", cb: runwaytest.CallbackFaults{Delay: 20 * time.Millisecond},
			wantSource: runway.SourceCallback, wantCalls: 1, wantPosts: 1},
		{name: "aleph shape for a runway task", cb: runwaytest.CallbackFaults{Shape: runwaytest.ShapeAleph},
			wantSource: runway.SourceCallback, wantCalls: 1, wantPosts: 1},
		{name: "aleph task", aleph: true, wantSource: runway.SourceCallback, wantCalls: 1, wantPosts: 1},
		{name: "aleph task, runway shape", aleph: true, cb: runwaytest.CallbackFaults{Shape: runwaytest.ShapeRunway},
			wantSource: runway.SourceCallback, wantCalls: 1, wantPosts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, nil, nil)
			sc := runwaytest.Script{Steps: manual, Callback: tt.cb}
			var id string
			if tt.aleph {
				e.srv.ScriptPrompt("aleph", sc)
				var err error
				id, err = e.c.GenerateAleph(ctx, runway.AlephRequest{
					Prompt: "aleph", VideoURL: "https://example.com/in.mp4", CallBackURL: e.cbURL,
				})
				require.NoError(t, err)
			} else {
				id = e.submit(t, ctx, "a cat", sc)
			}

			interval := minutePolls
			if tt.wantSource == runway.SourcePoll {
				interval = secondPolls
			}
			done := e.waitAsync(ctx, id, interval)
			_, err := e.srv.WaitRequests(ctx, "", 2) // the submission and the first poll
			require.NoError(t, err)
			_, err = e.srv.Finish(id)
			require.NoError(t, err)

			got := recv(t, ctx, done)
			require.NoError(t, got.err)
			assert.Equal(t, tt.wantSource, got.res.Source)
			assert.Equal(t, id, got.res.TaskID)
			info, _ := e.srv.Task(id)
			assert.Equal(t, info.VideoURL, got.res.VideoURL)
			assert.Equal(t, info.ImageURL, got.res.ImageURL)
			if tt.wantSource == runway.SourceCallback {
				assert.Equal(t, 1, polls(e.srv), "a callback win sends no further poll")
			}

			st, err := e.srv.WaitCallback(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, tt.wantPosts, st.Delivered, "copies answered 2xx")
			assert.Zero(t, st.GaveUp)
			assert.Equal(t, tt.wantPosts, len(st.Attempts), "no copy needed a retry")
			assert.Equal(t, tt.wantCalls, e.callsFor(id), "result func calls")
		})
	}
}

// TestE2ECallbackDelayedPastPoll: the poll sees the result first; the callback that lands
// later is still processed once, and a second wait returns the kept result without a GET.
func TestE2ECallbackDelayedPastPoll(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "slow callback", runwaytest.Script{Steps: manual,
		Callback: runwaytest.CallbackFaults{Delay: 2 * time.Second}})
	_, err := e.srv.Finish(id) // the callback waits 2 s; the wait's first poll comes now

	require.NoError(t, err)
	res, err := e.c.WaitForResult(ctx, id, minutePolls)
	require.NoError(t, err)
	assert.Equal(t, runway.SourcePoll, res.Source)
	assert.Zero(t, e.callsFor(id), "the callback has not landed yet")

	st, err := e.srv.WaitCallback(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Delivered)
	assert.Equal(t, 1, e.callsFor(id), "the late callback is processed once")

	again, err := e.c.WaitForResult(ctx, id, minutePolls)
	require.NoError(t, err)
	assert.Equal(t, res.VideoURL, again.VideoURL)
	assert.Equal(t, 1, polls(e.srv), "the second wait is answered by the result bus")
}

// TestE2ECallbackBeforeGenerateReturns: the callback's first attempt completes before the
// submission response is written. The handler has processed it by the time Generate returns,
// and the wait returns the kept result without polling.
func TestE2ECallbackBeforeGenerateReturns(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "early bird", runwaytest.Script{Callback: runwaytest.CallbackFaults{Early: true}})
	assert.Equal(t, 1, e.callsFor(id), "processed before Generate returned")

	res, err := e.c.WaitForResult(ctx, id, minutePolls)
	require.NoError(t, err)
	assert.Equal(t, runway.SourceCallback, res.Source)
	assert.Zero(t, polls(e.srv), "no GET")
	st, err := e.srv.WaitCallback(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Delivered)
	assert.Equal(t, 1, e.callsFor(id))
}

// TestE2EManyWaitersOneCallback: several waiters on one task (a retried request, a second
// screen) are all woken by its single callback, each after its own first poll.
func TestE2EManyWaitersOneCallback(t *testing.T) {
	t.Parallel()
	const waiters = 5
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "watched by many", runwaytest.Script{Steps: manual})
	dones := make([]<-chan waitResult, waiters)
	for i := range dones {
		dones[i] = e.waitAsync(ctx, id, minutePolls)
	}
	_, err := e.srv.WaitRequests(ctx, runwaytest.PathRecordDetail, waiters)
	require.NoError(t, err)
	_, err = e.srv.Finish(id)
	require.NoError(t, err)

	for _, done := range dones {
		got := recv(t, ctx, done)
		require.NoError(t, got.err)
		assert.Equal(t, runway.SourceCallback, got.res.Source)
		assert.Equal(t, id, got.res.TaskID)
	}
	assert.Equal(t, waiters, polls(e.srv), "one GET per waiter")
	_, err = e.srv.WaitCallback(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, 1, e.callsFor(id))
}
