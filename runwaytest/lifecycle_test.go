package runwaytest_test

//lint:file-ignore SA1019 these tests cover Aleph, which is deprecated but must keep working for existing tasks

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// A manual task walks every documented state, polls see each one, and success comes with
// files the fake serves and a signed Runway-shaped callback.
func TestGenerateWalksStatesToSuccess(t *testing.T) {
	t.Parallel()
	const key = "hmac-secret"
	srv := start(t, runwaytest.WithManualSteps(), runwaytest.WithHMACKey(key))
	c := client(t, srv)
	rc := newReceiver(t, nil)

	id, err := c.Generate(ctx(t), genReq(rc.URL))
	require.NoError(t, err)
	require.Len(t, id, 32)

	for _, want := range []runway.State{runway.StateWait, runway.StateQueueing, runway.StateGenerating} {
		task, err := c.GetTask(ctx(t), id)
		require.NoError(t, err)
		require.Equal(t, want, task.State)
		require.Empty(t, task.VideoURL)
		_, err = srv.Advance(id)
		require.NoError(t, err)
	}
	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, runway.StateSuccess, task.State)
	require.False(t, task.Expired)
	require.NotEmpty(t, task.VideoID)
	require.False(t, task.GeneratedAt.IsZero())

	// The files are served by the fake.
	for _, u := range []string{task.VideoURL, task.ImageURL} {
		want, ok := srv.FileBytes(u)
		require.True(t, ok)
		resp, err := http.Get(u)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, want, got)
	}

	cb := rc.next(t)
	body := decode(t, cb.Body)
	require.EqualValues(t, 200, body["code"])
	require.Equal(t, "All generated successfully.", body["msg"])
	data := body["data"].(map[string]any)
	require.Equal(t, id, data["task_id"])
	require.Equal(t, task.VideoURL, data["video_url"])
	require.Equal(t, task.ImageURL, data["image_url"])
	require.Equal(t, task.VideoID, data["video_id"])
	require.NotContains(t, body, "taskId")
	require.NoError(t, runway.VerifySignature(key, id,
		cb.Header.Get(runway.HeaderWebhookTimestamp), cb.Header.Get(runway.HeaderWebhookSignature),
		time.Now(), time.Minute))

	st, err := srv.WaitCallback(ctx(t), id)
	require.NoError(t, err)
	require.True(t, st.Done)
	require.Equal(t, 1, st.Delivered)
	require.Len(t, st.Attempts, 1)
	require.Equal(t, http.StatusOK, st.Attempts[0].StatusCode)

	info, ok := srv.Task(id)
	require.True(t, ok)
	require.Equal(t, []runway.State{runway.StateWait, runway.StateQueueing, runway.StateGenerating, runway.StateSuccess}, info.History)
	require.Equal(t, runwaytest.KindGenerate, info.Kind)
	require.Equal(t, rc.URL, info.CallbackURL)

	_, err = srv.Advance(id)
	require.ErrorIs(t, err, runwaytest.ErrTerminal)
}

// With the default steps, tasks finish on their own and the wait helpers see it.
func TestDefaultStepsFinishOnTheirOwn(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	info, err := srv.WaitTerminal(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, runway.StateSuccess, info.State)
	st, err := srv.WaitCallback(ctx(t), id)
	require.NoError(t, err)
	require.True(t, st.NoURL)
	require.Empty(t, st.Attempts)
	require.NoError(t, srv.WaitIdle(ctx(t)))
	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, runway.StateSuccess, task.State)

	_, err = srv.Advance(id)
	require.ErrorIs(t, err, runwaytest.ErrNotManual)
	_, err = srv.Advance("nope")
	require.ErrorIs(t, err, runwaytest.ErrUnknownTask)
}

// Each failure helper is reported by polling and by the callback with its code and message,
// and the SDK classifies it into the class the helper names.
func TestFailureHelpersClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    runwaytest.Outcome
		kind runway.ErrorKind
	}{
		{"moderation", runwaytest.FailModeration(), runway.KindModeration},
		{"format", runwaytest.FailFormat(), runway.KindFormat},
		{"quota", runwaytest.FailQuota(), runway.KindQuota},
		{"concurrency", runwaytest.FailConcurrency(), runway.KindConcurrency},
		{"size", runwaytest.FailSize(), runway.KindSize},
		{"input", runwaytest.FailInput(), runway.KindInput},
		{"transient", runwaytest.FailTransient(), runway.KindTransient},
		{"server", runwaytest.FailServer(), runway.KindServer},
		{"unknown", runwaytest.FailUnknown(), runway.KindUnknown},
		{"custom", runwaytest.Failure(501, "boom"), runway.KindServer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t)
			c := client(t, srv)
			rc := newReceiver(t, nil)
			srv.ScriptNext(1, runwaytest.Script{Outcome: tc.o})
			id, err := c.Generate(ctx(t), genReq(rc.URL))
			require.NoError(t, err)

			body := decode(t, rc.next(t).Body)
			require.EqualValues(t, tc.o.Code, body["code"])
			require.Equal(t, tc.o.Message, body["msg"])
			data := body["data"].(map[string]any)
			require.Equal(t, id, data["task_id"])
			require.Equal(t, "", data["video_url"])

			task, err := c.GetTask(ctx(t), id)
			require.NoError(t, err)
			require.Equal(t, runway.StateFail, task.State)
			require.Equal(t, tc.o.Code, task.FailCode)
			require.Equal(t, tc.o.Message, task.FailMessage)
			require.Empty(t, task.VideoURL)
			require.Equal(t, tc.kind, runway.Classify(task.FailCode, task.FailMessage))
			require.ErrorIs(t, task.Result().Err(), tc.kind.Sentinel())
		})
	}
}

// Every documented message maps to a class; only FailUnknown's is unknown.
func TestDocumentedFailuresAllClassified(t *testing.T) {
	t.Parallel()
	for _, o := range runwaytest.DocumentedFailures() {
		require.True(t, o.Failed())
		if o == runwaytest.FailUnknown() {
			continue
		}
		require.NotEqual(t, runway.KindUnknown, runway.Classify(o.Code, o.Message), o.Message)
	}
}

// SetOutcome changes a running task's fate; ScriptNext applies to the next N tasks only.
func TestScriptNextAndSetOutcome(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithManualSteps())
	c := client(t, srv)
	srv.ScriptNext(2, runwaytest.Script{Outcome: runwaytest.FailQuota()})
	var ids []string
	for range 3 {
		id, err := c.Generate(ctx(t), genReq(""))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, srv.SetOutcome(ids[1], runwaytest.Success()))
	want := []runway.State{runway.StateFail, runway.StateSuccess, runway.StateSuccess}
	for i, id := range ids {
		st, err := srv.Finish(id)
		require.NoError(t, err)
		require.Equal(t, want[i], st)
	}
	require.ErrorIs(t, srv.SetOutcome(ids[0], runwaytest.Success()), runwaytest.ErrTerminal)
	require.NoError(t, srv.WaitIdle(ctx(t)))
}

// Extensions need a successful parent, report it as parentTaskId and fail with the
// extension callback shape (only task_id).
func TestExtend(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithManualSteps())
	c := client(t, srv)
	rc := newReceiver(t, nil)
	parent, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)

	ext := runway.ExtendRequest{TaskID: parent, Prompt: "and then it jumps", Quality: runway.Quality720p, CallBackURL: rc.URL}
	_, err = c.Extend(ctx(t), ext)
	require.ErrorIs(t, err, runway.ErrValidation, "parent not finished")

	_, err = srv.Finish(parent)
	require.NoError(t, err)
	srv.ScriptNext(1, runwaytest.Script{Outcome: runwaytest.FailFormat()})
	id, err := c.Extend(ctx(t), ext)
	require.NoError(t, err)
	_, err = srv.Finish(id)
	require.NoError(t, err)

	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, parent, task.ParentID)
	require.Equal(t, runway.StateFail, task.State)

	body := decode(t, rc.next(t).Body)
	require.Equal(t, map[string]any{"task_id": id}, body["data"])

	ext.TaskID = "0123456789abcdef"
	_, err = c.Extend(ctx(t), ext)
	require.ErrorIs(t, err, runway.ErrNotFound)
}

// Aleph tasks use record-info's successFlag shape and the Aleph callback shape.
func TestAleph(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithManualSteps())
	c := client(t, srv)
	rc := newReceiver(t, nil)
	seed := 7
	req := runway.AlephRequest{Prompt: "make it snow", VideoURL: "https://example.com/in.mp4", Seed: &seed,
		AspectRatio: runway.AspectRatio21x9, CallBackURL: rc.URL}

	ok, err := c.GenerateAleph(ctx(t), req)
	require.NoError(t, err)
	srv.ScriptNext(1, runwaytest.Script{Outcome: runwaytest.FailModeration()})
	bad, err := c.GenerateAleph(ctx(t), req)
	require.NoError(t, err)

	task, err := c.GetAlephTask(ctx(t), ok)
	require.NoError(t, err)
	require.Equal(t, runway.StateGenerating, task.State)
	raw := decode(t, task.Raw)
	param := decode(t, []byte(raw["paramJson"].(string)))
	require.Equal(t, "make it snow", param["prompt"])
	require.Equal(t, "https://example.com/in.mp4", param["videoUrl"])
	require.EqualValues(t, 7, param["seed"])
	require.Equal(t, "21:9", param["aspectRatio"])

	_, err = c.GetTask(ctx(t), ok)
	require.ErrorIs(t, err, runway.ErrNotFound, "Aleph ids are unknown to record-detail")

	_, err = srv.Finish(ok)
	require.NoError(t, err)
	body := decode(t, rc.next(t).Body)
	require.Equal(t, ok, body["taskId"])
	require.EqualValues(t, 200, body["code"])
	data := body["data"].(map[string]any)
	task, err = c.GetAlephTask(ctx(t), ok)
	require.NoError(t, err)
	require.Equal(t, runway.StateSuccess, task.State)
	require.Equal(t, task.VideoURL, data["result_video_url"])
	require.Equal(t, task.ImageURL, data["result_image_url"])

	_, err = srv.Finish(bad)
	require.NoError(t, err)
	body = decode(t, rc.next(t).Body)
	require.Equal(t, bad, body["taskId"])
	require.EqualValues(t, 400, body["code"])
	require.Nil(t, body["data"])
	task, err = c.GetAlephTask(ctx(t), bad)
	require.NoError(t, err)
	require.Equal(t, runway.StateFail, task.State)
	require.Equal(t, runwaytest.FailModeration().Message, task.FailMessage)
}

// ScriptPrompt scripts concurrent submissions by prompt, ahead of ScriptNext.
func TestScriptPrompt(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithManualSteps())
	c := client(t, srv)
	outcomes := map[string]runwaytest.Outcome{
		"ok":         runwaytest.Success(),
		"moderated":  runwaytest.FailModeration(),
		"overloaded": runwaytest.FailConcurrency(),
	}
	for p, o := range outcomes {
		srv.ScriptPrompt(p, runwaytest.Script{Outcome: o})
	}
	srv.ScriptNext(10, runwaytest.Script{Outcome: runwaytest.FailServer()})
	cx := ctx(t)
	ids := make(chan [2]string, len(outcomes))
	for p := range outcomes {
		go func() {
			req := genReq("")
			req.Prompt = p
			id, err := c.Generate(cx, req)
			assert.NoError(t, err)
			ids <- [2]string{p, id}
		}()
	}
	for range outcomes {
		pid := <-ids
		info, ok := srv.Task(pid[1])
		require.True(t, ok)
		require.Equal(t, outcomes[pid[0]], info.Script.Outcome)
		require.Equal(t, pid[0], info.Prompt)
	}
	id, err := c.Generate(cx, genReq(""))
	require.NoError(t, err)
	info, _ := srv.Task(id)
	require.Equal(t, runwaytest.FailServer(), info.Script.Outcome, "other prompts still use the queue")
}

// runwaytest.WithHMACKey takes keys as runway.WithHMACKey does: during a rotation the fake,
// like Kie, signs with the first non-empty key (the current one), never with the old one.
func TestWithHMACKeySignsWithTheFirstKey(t *testing.T) {
	t.Parallel()
	const current, old = "current-key", "old-key"
	srv := start(t, runwaytest.WithHMACKey("", current, old))
	c := client(t, srv)
	rc := newReceiver(t, nil)

	id, err := c.Generate(ctx(t), genReq(rc.URL))
	require.NoError(t, err)
	cb := rc.next(t)
	ts, sig := cb.Header.Get(runway.HeaderWebhookTimestamp), cb.Header.Get(runway.HeaderWebhookSignature)
	require.NoError(t, runway.VerifySignature(current, id, ts, sig, time.Now(), time.Minute))
	require.Error(t, runway.VerifySignature(old, id, ts, sig, time.Now(), time.Minute))
}
