package runwaytest_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// chaosTasks is how many tasks the chaos test submits.
const chaosTasks = 1000

// chaosSeed returns RUNWAY_CHAOS_SEED when set (to replay a failure), else a new seed.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("RUNWAY_CHAOS_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "RUNWAY_CHAOS_SEED")
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// chaosRun is what one task's submit + wait produced.
type chaosRun struct {
	id        string
	res       *runway.Result
	submitErr error
	// submitTook is how long Generate took, for the failure message.
	submitTook time.Duration
	waitErr    error
}

// TestE2EChaos submits 1 000 tasks through the real client while the fake applies a seeded
// random mix of faults (dropped, duplicated, delayed, early and Aleph-shaped callbacks, 429 on
// submissions, 429/5xx/body-code/slow/reset/HTML bursts on polls, every failure class,
// failCode as a string), with callbacks into the client's CallbackHandler and every task
// awaited with WaitForResult. Every task must resolve with the outcome the fake scripted, the
// result func must run exactly once per task whose callback was sent (never for a dropped
// one), no task may be created twice, and nothing may be left running.
//
// Replay a failure with RUNWAY_CHAOS_SEED=<seed printed in the log>: the same seed gives the
// same set of scripts (which submission gets which depends on arrival order). Not parallel,
// so that goleak sees only its own goroutines.
func TestE2EChaos(t *testing.T) {
	seed := chaosSeed(t)
	runChaos(t, chaosTasks, runwaytest.DefaultChaos(seed), nil)
}

// TestE2EChaosRefetchFlakyResultFunc is the chaos run with WithRefetch (every callback is
// checked against the API, itself under faults) and a result func that fails its first call
// for a fifth of the tasks: the handler answers 500, releases the task id, and the fake's retry
// is processed, so each task's result is still processed successfully exactly once. Aleph-shaped
// callbacks for Runway tasks are off: with WithRefetch the shape picks the endpoint to ask.
func TestE2EChaosRefetchFlakyResultFunc(t *testing.T) {
	seed := chaosSeed(t)
	ch := runwaytest.DefaultChaos(seed)
	ch.AlephShape = 0
	flaky := func(id string) bool { return id[len(id)-1]%5 == 0 }
	runChaos(t, chaosTasks/4, ch, flaky, runway.WithRefetch())
}

// runChaos runs n tasks under the chaos mix ch and checks every task's outcome.
func runChaos(t *testing.T, n int, ch runwaytest.Chaos, failFirst func(string) bool, handlerOpts ...runway.CallbackOption) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, after the servers closed
	seed := ch.Seed
	t.Logf("chaos seed %d (replay: RUNWAY_CHAOS_SEED=%d)", seed, seed)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	t.Cleanup(tr.CloseIdleConnections)
	// Steps long enough that most first polls see a running task, so that callbacks and
	// polls race for the result; short enough for the test to stay well under 60 s.
	steps := runwaytest.Steps{Wait: 100 * time.Millisecond, Queueing: 100 * time.Millisecond, Generating: 300 * time.Millisecond}
	e := newE2E(t, []runwaytest.Option{runwaytest.WithChaos(ch), runwaytest.WithSteps(steps)},
		// The client's default request timeout: a shorter one turns a machine loaded by other
		// test binaries into submissions with unknown outcomes, i.e. a timing assertion.
		[]runway.Option{runway.WithHTTPClient(&http.Client{Transport: tr, Timeout: runway.DefaultRequestTimeout})},
		handlerOpts...)
	e.failFirst = failFirst

	runs := make([]chaosRun, n)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			r := &runs[i]
			start := time.Now()
			r.id, r.submitErr = e.c.Generate(ctx, e2eRequest(fmt.Sprintf("chaos task %d", i), e.cbURL))
			r.submitTook = time.Since(start)
			if r.submitErr != nil {
				return
			}
			r.res, r.waitErr = e.c.WaitForResult(ctx, r.id, secondPolls, runway.WithWaitTimeout(40*time.Second))
		})
	}
	wg.Wait()
	require.NoError(t, e.srv.WaitIdle(ctx), "seed %d: callback deliveries still running", seed)

	tasks := e.srv.Tasks()
	require.Len(t, tasks, n, "seed %d: one task per submission, none created twice", seed)
	seen := make(map[string]bool, n)
	var failed, dropped, viaPoll, flaky int
	for i, r := range runs {
		require.NoError(t, r.submitErr, "seed %d: task %d submission (took %s)", seed, i, r.submitTook)
		require.False(t, seen[r.id], "seed %d: task id %s returned twice", seed, r.id)
		seen[r.id] = true
		info, ok := e.srv.Task(r.id)
		require.True(t, ok, "seed %d: task %s unknown to the fake", seed, r.id)
		checkChaosOutcome(t, seed, info, r)
		if r.res != nil && r.res.Source == runway.SourcePoll {
			viaPoll++
		}

		want := 1
		if info.Callback.Dropped {
			want = 0
			dropped++
		}
		if info.Script.Outcome.Failed() {
			failed++
		}
		assert.Equal(t, want, e.callsFor(r.id), "seed %d: result func calls for %s (script %+v)", seed, r.id, info.Script)
		assert.Zero(t, info.Callback.GaveUp, "seed %d: callback for %s given up: %+v", seed, r.id, info.Callback.Attempts)
		e.mu.Lock()
		if e.tries[r.id] > e.calls[r.id] {
			flaky++
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	assert.Len(t, e.calls, n-dropped, "seed %d: result func ran only for submitted tasks", seed)
	e.mu.Unlock()

	var faults int
	for _, r := range e.srv.Requests() {
		if r.Fault != "" {
			faults++
		}
	}
	t.Logf("seed %d: %d tasks, %d failed, %d callbacks dropped, %d results via polling, %d API faults, %d callback attempts, %d result-func failures retried",
		seed, len(tasks), failed, dropped, viaPoll, faults, len(e.srv.CallbackAttempts()), flaky)
}

// checkChaosOutcome asserts that a wait returned the outcome the fake scripted for the task.
func checkChaosOutcome(t *testing.T, seed uint64, info runwaytest.TaskInfo, r chaosRun) {
	t.Helper()
	o := info.Script.Outcome
	require.NotNil(t, r.res, "seed %d: task %s: no result, wait error %v (script %+v)", seed, r.id, r.waitErr, info.Script)
	assert.Equal(t, r.id, r.res.TaskID, "seed %d", seed)
	if !o.Failed() {
		require.NoError(t, r.waitErr, "seed %d: task %s (script %+v)", seed, r.id, info.Script)
		assert.Equal(t, info.VideoURL, r.res.VideoURL, "seed %d: task %s", seed, r.id)
		assert.Equal(t, info.ImageURL, r.res.ImageURL, "seed %d: task %s", seed, r.id)
		return
	}
	var te *runway.TaskError
	require.ErrorAs(t, r.waitErr, &te, "seed %d: task %s (script %+v)", seed, r.id, info.Script)
	assert.Equal(t, o.Code, te.Code, "seed %d: task %s", seed, r.id)
	assert.Equal(t, o.Message, te.Message, "seed %d: task %s", seed, r.id)
	assert.Equal(t, runway.Classify(o.Code, o.Message), te.Kind, "seed %d: task %s", seed, r.id)
}
