package runwaytest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// The wait helpers return as soon as the condition holds, at once when it already held, and
// with the context's error when it ends first.
func TestWaitHelpers(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithManualSteps())
	c := client(t, srv)
	cx := ctx(t)

	submitted := make(chan string, 1)
	go func() {
		id, _ := c.Generate(cx, genReq(""))
		submitted <- id
	}()
	tasks, err := srv.WaitTasks(cx, 1)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	id := tasks[0].ID
	require.Equal(t, id, <-submitted)

	info, err := srv.WaitState(cx, id, runway.StateWait)
	require.NoError(t, err)
	require.Equal(t, runway.StateWait, info.State)

	reached := make(chan runwaytest.TaskInfo, 1)
	go func() {
		info, _ := srv.WaitState(cx, id, runway.StateGenerating)
		reached <- info
	}()
	_, err = srv.Advance(id)
	require.NoError(t, err)
	_, err = srv.Advance(id)
	require.NoError(t, err)
	require.Equal(t, runway.StateGenerating, (<-reached).State)

	cancelled, cancel := context.WithCancel(cx)
	cancel()
	_, err = srv.WaitTerminal(cancelled, id)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, srv.WaitIdle(cancelled), context.Canceled)

	_, err = srv.Finish(id)
	require.NoError(t, err)
	info, err = srv.WaitState(cx, id, runway.StateQueueing)
	require.NoError(t, err, "states passed before are found in the history")
	require.Equal(t, runway.StateSuccess, info.State)
	require.NoError(t, srv.WaitIdle(cx))
}

// SetChaos switches the mix for tasks created afterwards.
func TestSetChaos(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithManualSteps())
	c := client(t, srv)
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	srv.SetChaos(runwaytest.Chaos{Seed: 1, Fail: 1})
	failing, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	before, _ := srv.Task(id)
	after, _ := srv.Task(failing)
	require.False(t, before.Script.Outcome.Failed())
	require.True(t, after.Script.Outcome.Failed())
}
