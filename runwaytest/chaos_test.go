package runwaytest_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// The same seed gives the same ids and the same scripts in creation order; another seed
// gives others.
func TestChaosIsSeeded(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) []runwaytest.TaskInfo {
		srv := start(t, runwaytest.WithSeed(seed), runwaytest.WithManualSteps(), runwaytest.WithChaos(runwaytest.DefaultChaos(seed)))
		c := client(t, srv)
		for range 40 {
			_, err := c.Generate(ctx(t), genReq(""))
			require.NoError(t, err)
		}
		return srv.Tasks()
	}
	a, b, other := run(42), run(42), run(43)
	require.Len(t, a, 40)
	for i := range a {
		require.Equal(t, a[i].ID, b[i].ID)
		require.Equal(t, a[i].Script, b[i].Script)
	}
	differs := false
	for i := range a {
		differs = differs || a[i].ID != other[i].ID || a[i].Script != other[i].Script
	}
	require.True(t, differs)

	// The mix covers every task fault.
	var fail, drop, dup, delay, early, aleph bool
	for _, ti := range a {
		sc := ti.Script
		fail = fail || sc.Outcome.Failed()
		drop = drop || sc.Callback.Drop
		dup = dup || sc.Callback.Copies > 1
		delay = delay || sc.Callback.Delay > 0
		early = early || sc.Callback.Early
		aleph = aleph || sc.Callback.Shape == runwaytest.ShapeAleph
	}
	require.True(t, fail && drop && dup && delay && early && aleph)
}

// Under a chaos mix, a correct client still submits every task, polling returns the scripted
// outcome, and every callback that is not dropped arrives as many times as scripted.
func TestChaosIsSurvivable(t *testing.T) {
	t.Parallel()
	const tasks = 60
	ch := runwaytest.DefaultChaos(7)
	ch.SubmitRateLimit, ch.PollErrors = 0.5, 0.5 // high enough that both surely happen
	srv := start(t, runwaytest.WithChaos(ch), runwaytest.WithRetryIntervals(time.Millisecond, time.Millisecond, time.Millisecond))
	c := client(t, srv, runway.WithMaxRetries(3)) // = the default MaxBurst
	cx := ctx(t)
	got := map[string]int{}
	rc := newReceiver(t, nil)
	ids := make([]string, tasks)
	var wg sync.WaitGroup
	errs := make(chan error, tasks)
	for i := range tasks {
		wg.Go(func() {
			req := genReq(rc.URL)
			req.Prompt = fmt.Sprintf("task %d", i) // distinct requests get their own fault bursts
			id, err := c.Generate(cx, req)
			ids[i] = id
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, srv.WaitIdle(ctx(t)))
	faulted := map[string]int{}
	for _, r := range srv.Requests() {
		if r.Fault != "" {
			faulted[r.Path]++
		}
	}
	require.Positive(t, faulted[runwaytest.PathGenerate], "some submissions were rate limited")
	for range len(rc.got) {
		cb := <-rc.got
		var id string
		body := decode(t, cb.Body)
		if v, ok := body["taskId"].(string); ok {
			id = v
		} else {
			id = body["data"].(map[string]any)["task_id"].(string)
		}
		got[id]++
	}
	for _, id := range ids {
		info, ok := srv.Task(id)
		require.True(t, ok)
		task, err := c.GetTask(cx, id)
		require.NoError(t, err)
		want := info.Script.Outcome
		if want.Failed() {
			require.Equal(t, runway.StateFail, task.State)
			require.Equal(t, want.Code, task.FailCode)
			require.Equal(t, want.Message, task.FailMessage)
		} else {
			require.Equal(t, runway.StateSuccess, task.State)
		}
		copies := max(info.Script.Callback.Copies, 1)
		if info.Script.Callback.Drop {
			copies = 0
		}
		require.Equal(t, copies, got[id], id)
		require.Equal(t, copies, info.Callback.Delivered)
	}
	faulted = map[string]int{}
	for _, r := range srv.Requests() {
		if r.Fault != "" {
			faulted[r.Path]++
		}
	}
	require.Positive(t, faulted[runwaytest.PathRecordDetail], "some polls failed")
}
