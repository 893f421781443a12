package runway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Every test here runs inside a synctest bubble: time is fake and advances only when all of
// the bubble's goroutines are blocked, and synctest.Test fails if any goroutine started in
// the bubble outlives it, so each test doubles as a goroutine-leak check.

const testInterval = 30 * time.Second

// gaps returns the durations between consecutive times.
func gaps(ts []time.Time) []time.Duration {
	var ds []time.Duration
	for i := 1; i < len(ts); i++ {
		ds = append(ds, ts[i].Sub(ts[i-1]))
	}
	return ds
}

// requireJittered checks that every gap is the poll interval within its ±20% jitter.
func requireJittered(t *testing.T, interval time.Duration, ds []time.Duration) {
	t.Helper()
	for i, d := range ds {
		require.GreaterOrEqual(t, d, interval*8/10, "gap %d", i)
		require.LessOrEqual(t, d, interval*12/10, "gap %d", i)
	}
}

func TestWaitForResultPollsThroughStates(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("task-1",
			pollStateReply("task-1", StateWait),
			pollStateReply("task-1", StateWait),
			pollStateReply("task-1", StateQueueing),
			pollStateReply("task-1", StateGenerating),
			pollStateReply("task-1", StateGenerating),
			pollSuccessReply("task-1"),
		)
		c := newPollClient(t, api)
		start := time.Now()
		var seen []State
		res, err := c.WaitForResult(t.Context(), "task-1",
			WithPollInterval(testInterval),
			WithProgress(func(task *Task) { seen = append(seen, task.State) }))
		require.NoError(t, err)

		assert.Equal(t, SourcePoll, res.Source)
		assert.Equal(t, "task-1", res.TaskID)
		assert.Equal(t, 200, res.Code)
		assert.Equal(t, "https://file.test/task-1.mp4", res.VideoURL)
		assert.Equal(t, []State{StateWait, StateQueueing, StateGenerating, StateSuccess}, seen,
			"progress once per state change")
		times := api.getTimes("task-1")
		require.Len(t, times, 6, "one poll per scripted state")
		assert.Equal(t, start, times[0], "the first poll is sent at once")
		requireJittered(t, testInterval, gaps(times))
		assert.Equal(t, []string{"GET /api/v1/runway/record-detail"}, unique(api.paths()))

		kept, err := c.bus.Lookup(t.Context(), "task-1")
		require.NoError(t, err)
		require.NotNil(t, kept, "a polled result is published for other waiters")
		assert.Equal(t, SourcePoll, kept.Source)
		assert.Zero(t, c.hub.len())
	})
}

func unique(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func TestWaitForResultCallbackDuringWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		publishAt int // publish from inside GET number publishAt; 0: while the waiter sleeps
		wantGets  int
	}{
		{name: "while sleeping between polls", publishAt: 0, wantGets: 1},
		{name: "while a poll is in flight", publishAt: 2, wantGets: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("task-cb", pollStateReply("task-cb", StateGenerating))
				c := newPollClient(t, api)
				publish := func() {
					assert.NoError(t, c.bus.Publish(context.Background(), callbackResult("task-cb")))
				}
				if tt.publishAt > 0 {
					api.setOnGet(func(n int, _ string) {
						if n == tt.publishAt {
							publish()
						}
					})
				}
				start := time.Now()
				done := startWait(t.Context(), c, "task-cb", WithPollInterval(testInterval))
				if tt.publishAt == 0 {
					synctest.Wait() // the waiter polled once and sleeps
					require.Equal(t, 1, api.gets())
					publish()
				}
				out := <-done
				require.NoError(t, out.err)
				assert.Equal(t, SourceCallback, out.res.Source)
				assert.Equal(t, "https://file.test/task-cb.mp4", out.res.VideoURL)
				if tt.publishAt == 0 {
					assert.Equal(t, start, time.Now(), "returned at once, without waiting for the timer")
				}
				synctest.Wait()
				assert.Equal(t, tt.wantGets, api.gets(), "no poll after the callback")
				assert.Zero(t, c.hub.len())
			})
		})
	}
}

func TestWaitForResultCallbackBeforeWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("", pollStateReply("x", StateGenerating))
		c := newPollClient(t, api)
		require.NoError(t, c.bus.Publish(t.Context(), callbackResult("early")))
		failed := &Result{TaskID: "early-fail", Code: 400, Message: "Your prompt was caught by our AI moderator.", Source: SourceCallback}
		require.NoError(t, c.bus.Publish(t.Context(), failed))

		res, err := c.WaitForResult(t.Context(), "early")
		require.NoError(t, err)
		assert.Equal(t, SourceCallback, res.Source)

		res, err = c.WaitForResult(t.Context(), "early-fail")
		require.ErrorIs(t, err, ErrModeration)
		require.NotNil(t, res)
		assert.Equal(t, 400, res.Code)

		assert.Zero(t, api.gets(), "a kept result is returned without any poll")
		assert.Zero(t, c.hub.len())
	})
}

func TestWaitForResultDuplicateCallbacks(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("dup", pollStateReply("dup", StateGenerating))
		c := newPollClient(t, api)
		a := startWait(t.Context(), c, "dup")
		b := startWait(t.Context(), c, "dup")
		synctest.Wait()
		require.Equal(t, 1, c.hub.len(), "two waiters, one task")
		for range 3 {
			require.NoError(t, c.bus.Publish(t.Context(), callbackResult("dup")))
		}
		ra, rb := <-a, <-b
		require.NoError(t, ra.err)
		require.NoError(t, rb.err)
		ra.res.VideoURL = "changed by one caller"
		assert.Equal(t, "https://file.test/dup.mp4", rb.res.VideoURL, "each caller owns its copy")

		late, err := c.WaitForResult(t.Context(), "dup")
		require.NoError(t, err, "a late waiter still gets the result")
		assert.Equal(t, "https://file.test/dup.mp4", late.VideoURL)
		assert.Equal(t, 2, api.gets())
		assert.Zero(t, c.hub.len())
	})
}

func TestWaitForResultPolledResultWakesOtherWaiters(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("shared",
			pollStateReply("shared", StateGenerating),
			pollStateReply("shared", StateGenerating),
			pollSuccessReply("shared"))
		c := newPollClient(t, api)
		start := time.Now()
		slow := startWait(t.Context(), c, "shared", WithPollInterval(time.Hour), WithWaitTimeout(2*time.Hour))
		synctest.Wait()
		fast := startWait(t.Context(), c, "shared", WithPollInterval(testInterval))

		rf := <-fast
		require.NoError(t, rf.err)
		rs := <-slow
		require.NoError(t, rs.err)
		assert.Equal(t, SourcePoll, rs.res.Source)
		assert.Equal(t, rf.res.VideoURL, rs.res.VideoURL)
		assert.Equal(t, 3, api.gets(), "the slow waiter polled once, the fast one twice")
		assert.Less(t, time.Since(start), time.Minute, "the slow waiter returned with the fast one")
		assert.Zero(t, c.hub.len())
	})
}

func TestWaitForResultTaskFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg  string
		want error
		kind ErrorKind
	}{
		{"Your prompt was caught by our AI moderator.", ErrModeration, KindModeration},
		{"Incorrect image format", ErrFormat, KindFormat},
		{"HD quality free trials complete. Subscribe now to continue creating in high resolution.", ErrQuota, KindQuota},
		{"Reached the limit for concurrent generations.", ErrConcurrency, KindConcurrency},
		{"Unsupported width or height. Please adjust the size and try again.", ErrSize, KindSize},
		{"Your prompt/negative prompt cannot exceed 2048 characters.", ErrInput, KindInput},
		{"Upload failed due to network reasons, please re-enter", ErrTransient, KindTransient},
		{"Generation failed, please try again later", ErrUnknownFailure, KindUnknown},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("f", pollStateReply("f", StateGenerating), pollFailReply("f", tt.msg))
				c := newPollClient(t, api)
				res, err := c.WaitForResult(t.Context(), "f")
				var te *TaskError
				require.ErrorAs(t, err, &te)
				assert.ErrorIs(t, err, tt.want)
				assert.ErrorIs(t, err, ErrTaskFailed)
				assert.Equal(t, tt.kind, te.Kind)
				assert.Equal(t, tt.msg, te.Message, "the API's text is kept verbatim")
				assert.Equal(t, "f", te.TaskID)
				require.NotNil(t, res)
				assert.Equal(t, SourcePoll, res.Source)
				assert.Equal(t, 400, res.Code)
				assert.Equal(t, 2, api.gets())
			})
		})
	}
}

func TestWaitForResultSurvivesTransientErrors(t *testing.T) {
	t.Parallel()
	tooMany := pollEnvelopeReply(429, 429, "Too many requests")
	retryAt := func(d time.Duration) pollReply { r := tooMany; r.retryAfterIn = d; return r }
	tests := []struct {
		name  string
		fault pollReply
		gap   time.Duration // the gap after a fault; 0: a jittered backoff under the interval
		slack time.Duration // tolerance on gap (an HTTP date has whole seconds)
	}{
		{name: "HTTP 500", fault: pollEnvelopeReply(500, 500, "Server error")},
		{name: "HTTP 502 HTML page", fault: pollReply{status: 502, body: "<html>Bad Gateway</html>"}},
		{name: "HTTP 503", fault: pollEnvelopeReply(503, 503, "unavailable")},
		{name: "HTTP 504 empty body", fault: pollReply{status: 504}},
		{name: "HTTP 408", fault: pollEnvelopeReply(408, 408, "timeout")},
		{name: "HTTP 200 envelope 500", fault: pollEnvelopeReply(200, 500, "Server error")},
		{name: "HTTP 200 envelope 455", fault: pollEnvelopeReply(200, 455, "Service unavailable")},
		{name: "HTTP 200 envelope 429", fault: pollEnvelopeReply(200, 429, "Rate limited")},
		{name: "connection reset", fault: pollReply{err: syscall.ECONNRESET}},
		{name: "connection refused", fault: pollReply{err: syscall.ECONNREFUSED}},
		{name: "EOF mid-response", fault: pollReply{err: io.ErrUnexpectedEOF}},
		{name: "HTTP 200 HTML page", fault: pollReply{status: 200, body: "<html>proxy error</html>"}},
		{name: "HTTP 200 truncated JSON", fault: pollReply{status: 200, body: `{"code":200,"msg":"succ`}},
		{name: "429 Retry-After seconds above the interval", fault: withRetryAfter(tooMany, "120"), gap: 120 * time.Second},
		{name: "429 Retry-After seconds below the interval", fault: withRetryAfter(tooMany, "7"), gap: 7 * time.Second},
		{name: "429 Retry-After HTTP date", fault: retryAt(90 * time.Second), gap: 90 * time.Second, slack: time.Second},
		{name: "429 Retry-After in the past", fault: retryAt(-time.Hour)},
		{name: "429 Retry-After malformed", fault: withRetryAfter(tooMany, "soon")},
		{name: "503 Retry-After", fault: withRetryAfter(pollEnvelopeReply(503, 503, "unavailable"), "45"), gap: 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("tr", tt.fault, tt.fault, pollStateReply("tr", StateGenerating), tt.fault, pollSuccessReply("tr"))
				c := newPollClient(t, api)
				var seen []State
				res, err := c.WaitForResult(t.Context(), "tr", WithPollInterval(testInterval),
					WithProgress(func(task *Task) { seen = append(seen, task.State) }))
				require.NoError(t, err)
				assert.Equal(t, SourcePoll, res.Source)
				assert.Equal(t, []State{StateGenerating, StateSuccess}, seen)

				ds := gaps(api.getTimes("tr"))
				require.Len(t, ds, 4)
				requireJittered(t, testInterval, ds[2:3]) // after the good poll
				for _, i := range []int{0, 1, 3} {        // after a fault
					if tt.gap > 0 {
						assert.InDelta(t, float64(tt.gap), float64(ds[i]), float64(tt.slack), "gap %d honours Retry-After", i)
						continue
					}
					assert.GreaterOrEqual(t, ds[i], DefaultRetryWaitMin, "gap %d", i)
					assert.LessOrEqual(t, ds[i], 4*DefaultRetryWaitMin, "gap %d: early retries are quick", i)
				}
			})
		})
	}
}

func withRetryAfter(r pollReply, v string) pollReply {
	r.header = map[string]string{"Retry-After": v}
	return r
}

func TestWaitForResultTransientBackoffGrowsToTheInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("m", pollEnvelopeReply(200, 455, "Service unavailable"))
		c := newPollClient(t, api)
		start := time.Now()
		_, err := c.WaitForResult(t.Context(), "m", WithPollInterval(testInterval), WithWaitTimeout(10*time.Minute))
		var we *WaitError
		require.ErrorAs(t, err, &we)
		require.ErrorIs(t, err, ErrWaitTimeout, "maintenance for minutes: the wait timeout ends it")
		assert.Empty(t, we.LastState)
		assert.Equal(t, 10*time.Minute, time.Since(start))

		ds := gaps(api.getTimes("m"))
		require.Greater(t, len(ds), 20)
		for i, d := range ds {
			require.GreaterOrEqual(t, d, time.Second, "gap %d", i)
			require.LessOrEqual(t, d, testInterval, "gap %d", i)
		}
		assert.LessOrEqual(t, ds[0], 2*DefaultRetryWaitMin, "the first retry is quick")
		// Full jitter up to the interval: some of the ~35 later gaps exceed what the first
		// four exponential windows allow (all staying under 16 s has probability ~1e-9).
		assert.Greater(t, maxOf(ds), 16*time.Second, "later retries back off towards the interval")
	})
}

func TestWaitForResultPermanentErrorsEndTheWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault pollReply
		want  error
	}{
		{"HTTP 401", pollEnvelopeReply(401, 401, "You do not have access permissions"), ErrUnauthorized},
		{"HTTP 200 envelope 401", pollEnvelopeReply(200, 401, "You do not have access permissions"), ErrUnauthorized},
		{"envelope 402", pollEnvelopeReply(200, 402, "Insufficient credits"), ErrInsufficientCredits},
		{"envelope 422", pollEnvelopeReply(200, 422, "invalid taskId"), ErrValidation},
		{"envelope 501", pollEnvelopeReply(200, 501, "Generation failed"), ErrServer},
		{"envelope 505", pollEnvelopeReply(200, 505, "Feature disabled"), ErrFeatureDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("p", pollStateReply("p", StateQueueing), tt.fault)
				c := newPollClient(t, api)
				start := time.Now()
				res, err := c.WaitForResult(t.Context(), "p", WithPollInterval(testInterval))
				require.Nil(t, res)
				var we *WaitError
				require.ErrorAs(t, err, &we)
				assert.Equal(t, "p", we.TaskID)
				assert.Equal(t, StateQueueing, we.LastState)
				assert.ErrorIs(t, err, tt.want)
				assert.NotErrorIs(t, err, ErrWaitTimeout)
				var ae *APIError
				require.ErrorAs(t, err, &ae, "the API's error is kept")
				assert.NotContains(t, err.Error(), "test-key")
				assert.Equal(t, 2, api.gets(), "ended at the first permanent error")
				assert.LessOrEqual(t, time.Since(start), testInterval*12/10)
				assert.Zero(t, c.hub.len())
			})
		})
	}
}

func TestWaitForResultNotFoundGrace(t *testing.T) {
	t.Parallel()
	notFound := []pollReply{
		pollEnvelopeReply(404, 404, "task not found"),
		pollEnvelopeReply(200, 404, "task not found"),
	}
	for _, nf := range notFound {
		t.Run(fmt.Sprintf("HTTP %d", nf.status), func(t *testing.T) {
			t.Parallel()
			t.Run("visible within the grace", func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					api := newPollAPI(t).script("new", nf, nf, nf, pollStateReply("new", StateWait), pollSuccessReply("new"))
					c := newPollClient(t, api)
					res, err := c.WaitForResult(t.Context(), "new", WithPollInterval(testInterval))
					require.NoError(t, err)
					assert.Equal(t, SourcePoll, res.Source)
					assert.Equal(t, 5, api.gets())
				})
			})
			t.Run("never visible", func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					api := newPollAPI(t).script("gone", nf)
					c := newPollClient(t, api)
					start := time.Now()
					_, err := c.WaitForResult(t.Context(), "gone", WithPollInterval(testInterval))
					require.ErrorIs(t, err, ErrNotFound)
					var we *WaitError
					require.ErrorAs(t, err, &we)
					assert.NotErrorIs(t, err, ErrWaitTimeout)
					waited := time.Since(start)
					assert.GreaterOrEqual(t, waited, notFoundGrace)
					assert.LessOrEqual(t, waited, notFoundGrace+testInterval)
					assert.Greater(t, api.gets(), 3, "retried during the grace")
				})
			})
		})
	}
}

func TestWaitForResultUnknownState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []WaitOption
		replies  []pollReply
		wantName string
		last     State
	}{
		{
			name:     "runway state",
			replies:  []pollReply{pollStateReply("u", StateGenerating), pollStateReply("u", "paused")},
			wantName: `"paused"`,
			last:     StateGenerating,
		},
		{
			name:     "hostile state",
			replies:  []pollReply{pollStateReply("u", State("x\x1b[31m"+strings.Repeat("y", 500)))},
			wantName: `"x?[31myyy`,
		},
		{
			name:     "aleph successFlag",
			opts:     []WaitOption{WithAleph()},
			replies:  []pollReply{{body: `{"code":200,"msg":"success","data":{"taskId":"u","successFlag":3}}`}},
			wantName: `"successFlag:3"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("u", tt.replies...)
				c := newPollClient(t, api)
				res, err := c.WaitForResult(t.Context(), "u", tt.opts...)
				require.Nil(t, res)
				require.ErrorIs(t, err, ErrUnknownState)
				assert.NotErrorIs(t, err, ErrWaitTimeout)
				var we *WaitError
				require.ErrorAs(t, err, &we)
				assert.Equal(t, tt.last, we.LastState)
				assert.Contains(t, err.Error(), tt.wantName)
				assert.Less(t, len(err.Error()), 200, "untrusted text is bounded")
				assert.Len(t, api.getTimes("u"), len(tt.replies))
			})
		})
	}
}

func TestWaitForResultTimeout(t *testing.T) {
	t.Parallel()
	t.Run("stuck generating", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			api := newPollAPI(t).script("stuck", pollStateReply("stuck", StateQueueing), pollStateReply("stuck", StateGenerating))
			c := newPollClient(t, api)
			start := time.Now()
			res, err := c.WaitForResult(t.Context(), "stuck", WithPollInterval(testInterval), WithWaitTimeout(10*time.Minute))
			require.Nil(t, res)
			var we *WaitError
			require.ErrorAs(t, err, &we)
			assert.ErrorIs(t, err, ErrWaitTimeout)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, "stuck", we.TaskID)
			assert.Equal(t, StateGenerating, we.LastState)
			assert.Contains(t, err.Error(), "last state generating")
			assert.Equal(t, 10*time.Minute, time.Since(start), "ends exactly at the timeout")
			n := api.gets()
			assert.GreaterOrEqual(t, n, 1+int(10*time.Minute/(testInterval*12/10)))
			assert.LessOrEqual(t, n, 1+int(10*time.Minute/(testInterval*8/10)))
		})
	})
	t.Run("default timeout", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			api := newPollAPI(t).script("stuck", pollStateReply("stuck", StateGenerating))
			c := newPollClient(t, api)
			start := time.Now()
			_, err := c.WaitForResult(t.Context(), "stuck")
			require.ErrorIs(t, err, ErrWaitTimeout)
			assert.Equal(t, DefaultWaitTimeout, time.Since(start))
			requireJittered(t, DefaultPollInterval, gaps(api.getTimes("stuck")))
		})
	})
	t.Run("server never answers", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			api := newPollAPI(t).script("hang", pollStateReply("hang", StateGenerating), pollReply{hang: true})
			c := newPollClient(t, api)
			start := time.Now()
			_, err := c.WaitForResult(t.Context(), "hang", WithWaitTimeout(2*time.Minute))
			var we *WaitError
			require.ErrorAs(t, err, &we)
			assert.ErrorIs(t, err, ErrWaitTimeout, "an in-flight poll is charged against the wait timeout")
			assert.Equal(t, StateGenerating, we.LastState)
			assert.Equal(t, 2*time.Minute, time.Since(start))
			assert.Equal(t, 2, api.gets())
		})
	})
	for _, ra := range []string{"3600", "99999999999"} {
		t.Run("Retry-After "+ra+" beyond the deadline", func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("ra", withRetryAfter(pollEnvelopeReply(429, 429, "Too many requests"), ra))
				c := newPollClient(t, api)
				start := time.Now()
				_, err := c.WaitForResult(t.Context(), "ra", WithWaitTimeout(5*time.Minute))
				require.ErrorIs(t, err, ErrWaitTimeout)
				assert.Equal(t, 5*time.Minute, time.Since(start), "the backoff never runs past the deadline")
			})
		})
	}
	t.Run("context deadline, no wait timeout", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			api := newPollAPI(t).script("ctx", pollStateReply("ctx", StateGenerating))
			c := newPollClient(t, api)
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Hour)
			defer cancel()
			start := time.Now()
			_, err := c.WaitForResult(ctx, "ctx", WithWaitTimeout(0))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.NotErrorIs(t, err, ErrWaitTimeout)
			var we *WaitError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, StateGenerating, we.LastState)
			assert.Equal(t, 3*time.Hour, time.Since(start), "WithWaitTimeout(0) leaves the bound to the context")
		})
	})
}

func TestWaitForResultCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply pollReply
	}{
		{name: "mid-sleep", reply: pollStateReply("c", StateGenerating)},
		{name: "mid-backoff", reply: pollEnvelopeReply(503, 503, "unavailable")},
		{name: "mid-request", reply: pollReply{hang: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("c", tt.reply)
				c := newPollClient(t, api)
				ctx, cancel := context.WithCancel(t.Context())
				done := startWait(ctx, c, "c", WithPollInterval(time.Hour), WithWaitTimeout(0))
				synctest.Wait() // the waiter is blocked: sleeping, backing off or in the request
				require.Equal(t, 1, api.gets())
				at := time.Now()
				cancel()
				out := <-done
				require.Nil(t, out.res)
				require.ErrorIs(t, out.err, context.Canceled)
				var we *WaitError
				require.ErrorAs(t, out.err, &we)
				assert.Equal(t, "c", we.TaskID)
				assert.Equal(t, at, time.Now(), "returned without waiting for any timer")
				assert.Equal(t, 1, api.gets())
				assert.Zero(t, c.hub.len())
			})
		})
	}
}

func TestWaitForResultAleph(t *testing.T) {
	t.Parallel()
	alephDone := pollReply{body: `{"code":200,"msg":"success","data":{"taskId":"aleph-1","successFlag":1,` +
		`"response":{"resultVideoUrl":"https://file.test/aleph.mp4","resultImageUrl":"https://file.test/aleph.png"}}}`}
	alephRunning := pollReply{body: `{"code":200,"msg":"success","data":{"taskId":"aleph-1","successFlag":0}}`}

	t.Run("submitted through GenerateAleph", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			api := newPollAPI(t).script("aleph-1", alephRunning, alephDone)
			c := newPollClient(t, api)
			id, err := c.GenerateAleph(t.Context(), AlephRequest{Prompt: "make it snow", VideoURL: "https://file.test/in.mp4"})
			require.NoError(t, err)
			require.Equal(t, "aleph-1", id)
			var seen []State
			res, err := c.WaitForResult(t.Context(), id, WithProgress(func(task *Task) {
				assert.True(t, task.Aleph)
				seen = append(seen, task.State)
			}))
			require.NoError(t, err)
			assert.Equal(t, "https://file.test/aleph.mp4", res.VideoURL)
			assert.Equal(t, "https://file.test/aleph.png", res.ImageURL)
			assert.Equal(t, []State{StateGenerating, StateSuccess}, seen)
			assert.Equal(t, []string{
				"POST /api/v1/aleph/generate",
				"GET /api/v1/aleph/record-info",
				"GET /api/v1/aleph/record-info",
			}, api.paths())
		})
	})
	t.Run("WithAleph", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			api := newPollAPI(t).script("aleph-1", alephDone)
			c := newPollClient(t, api)
			res, err := c.WaitForResult(t.Context(), "aleph-1", WithAleph())
			require.NoError(t, err)
			assert.Equal(t, "https://file.test/aleph.mp4", res.VideoURL)
			assert.Equal(t, []string{"GET /api/v1/aleph/record-info"}, api.paths())
		})
	})
	t.Run("other ids use record-detail", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			api := newPollAPI(t).script("runway-1", pollSuccessReply("runway-1"))
			c := newPollClient(t, api)
			_, err := c.WaitForResult(t.Context(), "runway-1")
			require.NoError(t, err)
			assert.Equal(t, []string{"GET /api/v1/runway/record-detail"}, api.paths())
		})
	})
}

func TestWaitForResultInvalidArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		id    string
		opts  []WaitOption
		field string
	}{
		{"empty task id", "", nil, "taskID"},
		{"task id with a newline", "a\nb", nil, "taskID"},
		{"negative interval", "t", []WaitOption{WithPollInterval(-time.Second)}, "WithPollInterval"},
		{"negative timeout", "t", []WaitOption{WithWaitTimeout(-time.Second)}, "WithWaitTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newPollAPI(t).script("", pollSuccessReply("t"))
			c := newPollClient(t, api)
			_, err := c.WaitForResult(t.Context(), tt.id, tt.opts...)
			require.ErrorIs(t, err, ErrInvalidRequest)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.Zero(t, api.gets(), "nothing sent")
			assert.Zero(t, c.hub.len())
		})
	}
}

func TestWaitForResultPollIntervalOption(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opt  WaitOption
		want time.Duration
	}{
		{WaitOption{}, DefaultPollInterval},
		{WithPollInterval(time.Millisecond), minPollInterval},
		{WithPollInterval(2 * time.Minute), 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("i", pollStateReply("i", StateWait), pollStateReply("i", StateGenerating), pollSuccessReply("i"))
				c := newPollClient(t, api)
				_, err := c.WaitForResult(t.Context(), "i", tt.opt)
				require.NoError(t, err)
				requireJittered(t, tt.want, gaps(api.getTimes("i")))
			})
		})
	}
}

// flakyBus is a ResultBus whose Lookup and Publish fail, as a shared store may during an
// outage: waiting must go on by polling.
type flakyBus struct{ *MemoryResultBus }

func (flakyBus) Lookup(context.Context, string) (*Result, error) {
	return nil, errors.New("bus down")
}

func (flakyBus) Publish(context.Context, *Result) error { return errors.New("bus down") }

func TestWaitForResultSurvivesBusErrors(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("b", pollStateReply("b", StateGenerating), pollSuccessReply("b"))
		c := newPollClient(t, api, WithResultBus(flakyBus{NewMemoryResultBus(0, 0)}))
		res, err := c.WaitForResult(t.Context(), "b")
		require.NoError(t, err)
		assert.Equal(t, SourcePoll, res.Source)
		assert.Equal(t, 2, api.gets())
	})
}

// racingBus publishes a callback result right after its Lookup found nothing: the callback
// lands between the waiter's lookup and its first poll.
type racingBus struct{ *MemoryResultBus }

func (b racingBus) Lookup(ctx context.Context, taskID string) (*Result, error) {
	r, err := b.MemoryResultBus.Lookup(ctx, taskID)
	if err == nil && r == nil {
		err = b.Publish(ctx, callbackResult(taskID))
	}
	return r, err
}

func TestWaitForResultCallbackDuringLookup(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("race", pollStateReply("race", StateGenerating))
		c := newPollClient(t, api, WithResultBus(racingBus{NewMemoryResultBus(0, 0)}))
		res, err := c.WaitForResult(t.Context(), "race")
		require.NoError(t, err)
		assert.Equal(t, SourceCallback, res.Source, "registered before the lookup, so not missed")
		assert.Zero(t, api.gets(), "no poll once the result is in")
		assert.Zero(t, c.hub.len())
	})
}

func TestJitterSpread(t *testing.T) {
	t.Parallel()
	const n = 10000
	lo, hi, sum := time.Duration(1<<62), time.Duration(0), time.Duration(0)
	for range n {
		d := jitter(testInterval)
		require.GreaterOrEqual(t, d, testInterval*8/10)
		require.LessOrEqual(t, d, testInterval*12/10)
		lo, hi, sum = min(lo, d), max(hi, d), sum+d
	}
	// Uniform over ±20%: with 10 000 draws the extremes lie within 0.5% of the bounds except
	// with probability about 1e-21.
	assert.Less(t, lo, testInterval*81/100)
	assert.Greater(t, hi, testInterval*119/100)
	assert.InDelta(t, float64(testInterval), float64(sum/n), float64(testInterval)/100)
}

func TestWaitForResultSpreadsManyWaiters(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("", pollStateReply("x", StateGenerating))
		c := newPollClient(t, api)
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		const n = 200
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := c.WaitForResult(ctx, fmt.Sprintf("herd-%d", i), WithPollInterval(testInterval))
				assert.ErrorIs(t, err, context.Canceled)
			})
		}
		<-time.After(testInterval * 13 / 10) // every waiter has polled twice
		cancel()
		wg.Wait()
		var second []time.Duration
		for i := range n {
			ts := api.getTimes(fmt.Sprintf("herd-%d", i))
			require.Len(t, ts, 2)
			require.Equal(t, start, ts[0])
			second = append(second, ts[1].Sub(start))
		}
		requireJittered(t, testInterval, second)
		assert.Greater(t, maxOf(second)-minOf(second), testInterval/3, "second polls spread over the jitter window")
		assert.Zero(t, c.hub.len())
	})
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// TestWaitForResultThousandCallbacks is not parallel so that goleak sees only its own
// goroutines.
func TestWaitForResultThousandCallbacks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("", pollStateReply("x", StateGenerating))
		c := newPollClient(t, api)
		start := time.Now()
		const n = 1000
		id := func(i int) string { return fmt.Sprintf("task-%04d", i) }
		results := make([]waitOutcome, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				res, err := c.WaitForResult(t.Context(), id(i))
				results[i] = waitOutcome{res, err}
			})
		}
		synctest.Wait()
		require.Equal(t, n, c.hub.len(), "every waiter registered")
		require.Equal(t, n, api.gets(), "every waiter polled once")
		for i := range n {
			require.NoError(t, c.bus.Publish(t.Context(), callbackResult(id(i))))
		}
		wg.Wait()
		for i, out := range results {
			require.NoError(t, out.err)
			require.Equal(t, id(i), out.res.TaskID)
			require.Equal(t, SourceCallback, out.res.Source)
		}
		assert.Zero(t, c.hub.len(), "no registration outlives its call")
		assert.Equal(t, n, api.gets(), "no poll after the callbacks")
		assert.Equal(t, start, time.Now(), "resolved without any timer firing")
	})
}

// TestWaitForResultHerdAfterOutage is CL-14: 2 000 waiters on distinct tasks all
// meet HTTP 503 for two minutes (long enough for the backoff to reach the interval), then the API recovers. Their polls after the outage must
// be spread, not a herd: counting polls in windows of a tenth of the interval over the two
// intervals after the outage (every waiter still polling: each task answers generating four
// times before success), the fullest window holds less than bound times the average. Why
// the bound: the transient backoff is full jitter up to the interval, so when the fault
// clears each waiter is somewhere in a uniform wait, and its first poll comes after the
// residual of that wait, whose density is at most twice the average (the first window holds
// about 19% of the first polls instead of 10%); the ±20% interval jitter then only smooths.
// Random counting noise at about 200 polls per window adds a few tenths. A synchronised
// herd would put every waiter's poll in one window: a ratio of 20 (the number of windows).
// Every waiter resolves by polling.
func TestWaitForResultHerdAfterOutage(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const (
			herd    = 2000
			outage  = 2 * time.Minute
			window  = testInterval / 10
			measure = 2 * testInterval
			bound   = 2.6
		)
		api := newPollAPI(t)
		ids := make([]string, herd)
		for i := range ids {
			ids[i] = fmt.Sprintf("herd-%d", i)
			g := pollStateReply(ids[i], StateGenerating)
			api.script(ids[i], g, g, g, g, pollSuccessReply(ids[i]))
		}
		end := time.Now().Add(outage)
		down := &outageTransport{end: end, next: api}
		c := newPollClient(t, api, WithMaxRetries(0), WithHTTPClient(&http.Client{Transport: down}))
		outcomes := make([]<-chan waitOutcome, herd)
		for i, id := range ids {
			outcomes[i] = startWait(t.Context(), c, id, WithPollInterval(testInterval))
		}
		for i, o := range outcomes {
			out := <-o
			require.NoError(t, out.err, ids[i])
			require.Equal(t, SourcePoll, out.res.Source)
		}
		require.GreaterOrEqual(t, down.refused.Load(), int64(2*herd), "every waiter met the outage, more than once")

		counts := make([]int, measure/window)
		total := 0
		api.mu.Lock()
		for _, call := range api.calls {
			if d := call.at.Sub(end); d >= 0 && d < measure {
				counts[d/window]++
				total++
			}
		}
		api.mu.Unlock()
		require.Greater(t, total, herd, "every waiter polls about twice in the measured period")
		ratio := float64(slices.Max(counts)) / (float64(total) / float64(len(counts)))
		t.Logf("polls per %s window after the outage: %v; peak/average %.2f", window, counts, ratio)
		require.Less(t, ratio, bound)
	})
}

// outageTransport answers every request with 503 until end, then hands it to next.
type outageTransport struct {
	end     time.Time
	next    http.RoundTripper
	refused atomic.Int64
}

func (o *outageTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !time.Now().Before(o.end) {
		return o.next.RoundTrip(req)
	}
	o.refused.Add(1)
	rec := httptest.NewRecorder()
	rec.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(rec, `{"code":503,"msg":"unavailable","data":null}`)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
