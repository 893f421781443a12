package runwaytest_test

//lint:file-ignore SA1019 these tests cover Aleph, which is deprecated but must keep working for existing tasks

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// A receiver that keeps failing gets the first attempt and 3 retries, then the fake gives up;
// one that recovers stops the retries at its first 2xx.
func TestCallbackRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		failFirst int // receiver answers 500 to this many requests, then 200
		attempts  int
		delivered int
		gaveUp    int
	}{
		{"first attempt ok", 0, 1, 1, 0},
		{"recovers on second retry", 2, 3, 1, 0},
		{"recovers on last retry", 3, 4, 1, 0},
		{"never recovers", 100, 4, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, runwaytest.WithRetryIntervals(time.Millisecond, 2*time.Millisecond, 3*time.Millisecond))
			c := client(t, srv)
			rc := newReceiver(t, func(n int, _ *http.Request) int {
				switch {
				case n < tc.failFirst && n%2 == 1:
					return http.StatusFound // a redirect is a failed delivery too
				case n < tc.failFirst:
					return http.StatusInternalServerError
				}
				return http.StatusNoContent
			})
			id, err := c.Generate(ctx(t), genReq(rc.URL))
			require.NoError(t, err)
			st, err := srv.WaitCallback(ctx(t), id)
			require.NoError(t, err)
			require.Len(t, st.Attempts, tc.attempts)
			require.Equal(t, tc.delivered, st.Delivered)
			require.Equal(t, tc.gaveUp, st.GaveUp)
			for i, a := range st.Attempts {
				require.Equal(t, i, a.Retry)
				require.Equal(t, id, a.TaskID)
				require.NoError(t, a.Err)
			}
			require.Len(t, rc.got, tc.attempts)
		})
	}
}

// An attempt that outlives the callback timeout is a failed attempt and is retried.
func TestCallbackTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithCallbackTimeout(20*time.Millisecond), runwaytest.WithRetryIntervals(time.Millisecond))
	c := client(t, srv)
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 0 {
			<-r.Context().Done() // hold the first attempt until the fake gives up on it
		}
		return http.StatusOK
	})
	id, err := c.Generate(ctx(t), genReq(rc.URL))
	require.NoError(t, err)
	st, err := srv.WaitCallback(ctx(t), id)
	require.NoError(t, err)
	require.Len(t, st.Attempts, 2)
	require.Error(t, st.Attempts[0].Err)
	require.Zero(t, st.Attempts[0].StatusCode)
	require.Equal(t, http.StatusOK, st.Attempts[1].StatusCode)
	require.Equal(t, 1, st.Delivered)
}

// A refused connection counts as a failed attempt too, and the fake gives up after the retries.
func TestCallbackUnreachable(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithRetryIntervals(time.Millisecond, time.Millisecond, time.Millisecond))
	c := client(t, srv)
	// A closed listener: take a fresh server's URL and close it before the callback.
	dead := runwaytest.NewServer()
	url := dead.URL + "/callback"
	dead.Close()
	id, err := c.Generate(ctx(t), genReq(url))
	require.NoError(t, err)
	st, err := srv.WaitCallback(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, 1, st.GaveUp)
	require.Len(t, st.Attempts, 4)
	for _, a := range st.Attempts {
		require.Error(t, a.Err)
	}
}

func TestCallbackFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		cf        runwaytest.CallbackFaults
		callbacks int
	}{
		{"drop", runwaytest.CallbackFaults{Drop: true}, 0},
		{"duplicates in sequence", runwaytest.CallbackFaults{Copies: 3}, 3},
		{"duplicates concurrently", runwaytest.CallbackFaults{Copies: 5, Concurrent: true}, 5},
		{"delayed", runwaytest.CallbackFaults{Delay: 5 * time.Millisecond}, 1},
		{"delayed duplicates", runwaytest.CallbackFaults{Delay: time.Millisecond, Copies: 2, Concurrent: true}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t)
			c := client(t, srv)
			rc := newReceiver(t, nil)
			srv.ScriptNext(1, runwaytest.Script{Callback: tc.cf})
			id, err := c.Generate(ctx(t), genReq(rc.URL))
			require.NoError(t, err)
			st, err := srv.WaitCallback(ctx(t), id)
			require.NoError(t, err)
			require.Equal(t, tc.cf.Drop, st.Dropped)
			require.Equal(t, tc.callbacks, st.Delivered)
			require.Len(t, st.Attempts, tc.callbacks)
			require.Len(t, rc.got, tc.callbacks)
			copies := map[int]bool{}
			for _, a := range st.Attempts {
				copies[a.Copy] = true
				require.True(t, a.Delivered())
			}
			require.Len(t, copies, tc.callbacks)
			info, _ := srv.Task(id)
			if tc.cf.Delay > 0 && tc.callbacks > 0 {
				require.GreaterOrEqual(t, st.Attempts[0].Time.Sub(info.Completed), tc.cf.Delay)
			}
		})
	}
}

// An early callback is delivered before the submission response is written: when Generate
// returns, the receiver has already seen it.
func TestEarlyCallbackBeatsSubmissionResponse(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	var generateReturned atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) int {
		assert.False(t, generateReturned.Load())
		return http.StatusOK
	})
	srv.ScriptNext(1, runwaytest.Script{Outcome: runwaytest.FailConcurrency(), Callback: runwaytest.CallbackFaults{Early: true}})
	id, err := c.Generate(ctx(t), genReq(rc.URL))
	generateReturned.Store(true)
	require.NoError(t, err)
	select {
	case cb := <-rc.got:
		require.Equal(t, id, decode(t, cb.Body)["data"].(map[string]any)["task_id"])
	default:
		t.Fatal("callback not received before Generate returned")
	}
	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, runway.StateFail, task.State)
}

// ShapeAleph sends the Aleph callback shape for a Runway task; ShapeRunway the Runway shape
// for an Aleph task.
func TestCallbackShapes(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	rc := newReceiver(t, nil)

	srv.ScriptNext(1, runwaytest.Script{Callback: runwaytest.CallbackFaults{Shape: runwaytest.ShapeAleph}})
	id, err := c.Generate(ctx(t), genReq(rc.URL))
	require.NoError(t, err)
	body := decode(t, rc.next(t).Body)
	require.Equal(t, id, body["taskId"])
	require.Contains(t, body["data"], "result_video_url")

	srv.ScriptNext(1, runwaytest.Script{Callback: runwaytest.CallbackFaults{Shape: runwaytest.ShapeRunway}})
	id, err = c.GenerateAleph(ctx(t), runway.AlephRequest{Prompt: "p", VideoURL: "https://example.com/v.mp4", CallBackURL: rc.URL})
	require.NoError(t, err)
	body = decode(t, rc.next(t).Body)
	require.NotContains(t, body, "taskId")
	require.Equal(t, id, body["data"].(map[string]any)["task_id"])
}

// Without an HMAC key callbacks carry no signature headers.
func TestUnsignedCallbacks(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	rc := newReceiver(t, nil)
	_, err := c.Generate(ctx(t), genReq(rc.URL))
	require.NoError(t, err)
	cb := rc.next(t)
	require.Empty(t, cb.Header.Get(runway.HeaderWebhookSignature))
	require.Empty(t, cb.Header.Get(runway.HeaderWebhookTimestamp))
}
