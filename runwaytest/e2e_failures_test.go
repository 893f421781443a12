package runwaytest_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// route is how a failure reaches the waiter.
type route struct {
	name   string
	cb     runwaytest.CallbackFaults
	poll   runwaytest.PollFaults
	source runway.Source
}

var failureRoutes = []route{
	{name: "runway callback", source: runway.SourceCallback},
	{name: "aleph-shape callback", cb: runwaytest.CallbackFaults{Shape: runwaytest.ShapeAleph}, source: runway.SourceCallback},
	{name: "poll, failCode as string", cb: runwaytest.CallbackFaults{Drop: true},
		poll: runwaytest.PollFaults{FailCodeAsString: true}, source: runway.SourcePoll},
}

// TestE2EFailuresClassified: every documented failure class, delivered by each callback shape
// and by polling with failCode as a string, ends the wait with a *TaskError of that class,
// the API's code and message kept verbatim; the result func sees the same failure once.
func TestE2EFailuresClassified(t *testing.T) {
	t.Parallel()
	classes := []struct {
		outcome runwaytest.Outcome
		want    error
	}{
		{runwaytest.FailModeration(), runway.ErrModeration},
		{runwaytest.FailFormat(), runway.ErrFormat},
		{runwaytest.FailQuota(), runway.ErrQuota},
		{runwaytest.FailConcurrency(), runway.ErrConcurrency},
		{runwaytest.FailSize(), runway.ErrSize},
		{runwaytest.FailInput(), runway.ErrInput},
		{runwaytest.FailTransient(), runway.ErrTransient},
		{runwaytest.FailServer(), runway.ErrServer},
		{runwaytest.FailUnknown(), runway.ErrUnknownFailure},
	}
	for _, cl := range classes {
		for _, rt := range failureRoutes {
			t.Run(fmt.Sprintf("%v/%s", cl.want, rt.name), func(t *testing.T) {
				t.Parallel()
				res, err := failThrough(t, cl.outcome, rt)
				assert.ErrorIs(t, err, cl.want)
				assert.Equal(t, rt.source, res.Source)
			})
		}
	}
}

// TestE2EDocumentedFailureMessages: each failure message the API reference lists ends the
// wait with a *TaskError classified as Classify says, never as a generic failure.
func TestE2EDocumentedFailureMessages(t *testing.T) {
	t.Parallel()
	for i, o := range runwaytest.DocumentedFailures() {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			_, err := failThrough(t, o, failureRoutes[0])
			var te *runway.TaskError
			require.ErrorAs(t, err, &te)
			if o != runwaytest.FailUnknown() {
				assert.NotEqual(t, runway.KindUnknown, te.Kind, "%q is documented", o.Message)
			}
		})
	}
}

// failThrough runs a task scripted to fail with o along rt and checks what every failure
// shares: a *TaskError with the task id, code and message verbatim, its Kind from Classify,
// the result func called once when a callback was delivered.
func failThrough(t *testing.T, o runwaytest.Outcome, rt route) (*runway.Result, error) {
	t.Helper()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "doomed", runwaytest.Script{Outcome: o, Steps: manual, Callback: rt.cb, Poll: rt.poll})
	interval := minutePolls
	if rt.source == runway.SourcePoll {
		interval = secondPolls
	}
	got := e.finishWhileWaiting(t, ctx, id, interval)

	require.NotNil(t, got.res, "a failed task still returns its result")
	var te *runway.TaskError
	require.ErrorAs(t, got.err, &te)
	assert.ErrorIs(t, got.err, runway.ErrTaskFailed)
	assert.Equal(t, id, te.TaskID)
	assert.Equal(t, o.Code, te.Code)
	assert.Equal(t, o.Message, te.Message)
	assert.Equal(t, runway.Classify(o.Code, o.Message), te.Kind)
	assert.ErrorIs(t, got.err, kindSentinel[te.Kind])

	st, err := e.srv.WaitCallback(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, st.Delivered, e.callsFor(id), "result func once per delivered callback")
	return got.res, got.err
}
