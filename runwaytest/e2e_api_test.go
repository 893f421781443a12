package runwaytest_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// faulted counts the answers to path that an injected fault shaped.
func faulted(srv *runwaytest.Server, path string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Path == path && r.Fault != "" {
			n++
		}
	}
	return n
}

// TestE2EPollFaults: transient API faults on the details endpoint while the callback is lost.
// The wait absorbs every one of them and polling still delivers the result: nothing lost.
func TestE2EPollFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault runwaytest.APIFault
		n     int
	}{
		{"429 with Retry-After", runwaytest.RateLimited("1"), 2},
		{"429 with a malformed Retry-After", runwaytest.RateLimited("soon"), 2},
		{"500 burst", runwaytest.ServerError(http.StatusInternalServerError), 3},
		{"502 burst", runwaytest.ServerError(http.StatusBadGateway), 3},
		{"503 burst", runwaytest.ServerError(http.StatusServiceUnavailable), 3},
		{"504 burst", runwaytest.ServerError(http.StatusGatewayTimeout), 3},
		{"HTTP 200 body code 500", runwaytest.BodyError(500, "Server error"), 2},
		{"HTTP 200 body code 455", runwaytest.BodyError(455, "Service unavailable"), 2},
		{"HTTP 200 body code 429", runwaytest.BodyError(429, "Too many requests"), 2},
		{"connection resets", runwaytest.ConnectionReset(), 3},
		{"non-JSON 502 page", runwaytest.NonJSON(http.StatusBadGateway), 2},
		{"non-JSON 200 page", runwaytest.NonJSON(http.StatusOK), 2},
		{"truncated body", runwaytest.TruncatedBody(), 2},
		{"50 MB body", runwaytest.HugeBody(50 << 20), 1},
		{"404 right after creation", runwaytest.BodyError(404, "Task not found"), 2},
	}
	for _, f := range runwaytest.NotFoundForms() {
		tests = append(tests, struct {
			name  string
			fault runwaytest.APIFault
			n     int
		}{"not found right after creation: " + f.String(), runwaytest.NotFound(f), 2})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, nil, nil)
			id := e.submit(t, ctx, "poll through faults", runwaytest.Script{Steps: manual,
				Callback: runwaytest.CallbackFaults{Drop: true}})
			_, err := e.srv.Finish(id)
			require.NoError(t, err)
			e.srv.InjectFault(runwaytest.PathRecordDetail, tt.n, tt.fault)

			res, err := e.c.WaitForResult(ctx, id, secondPolls)
			require.NoError(t, err)
			assert.Equal(t, runway.SourcePoll, res.Source)
			info, _ := e.srv.Task(id)
			assert.Equal(t, info.VideoURL, res.VideoURL)
			assert.Equal(t, tt.n, faulted(e.srv, runwaytest.PathRecordDetail), "every fault was met")
			assert.Equal(t, tt.n+1, polls(e.srv), "one poll per fault, then the answer")
		})
	}
}

// TestE2EPollSlowResponse: a slow answer is still the answer; the wait does not give up on it.
func TestE2EPollSlowResponse(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "slow poll", runwaytest.Script{Steps: manual, Callback: runwaytest.CallbackFaults{Drop: true}})
	_, err := e.srv.Finish(id)
	require.NoError(t, err)
	e.srv.InjectFault(runwaytest.PathRecordDetail, 1, runwaytest.SlowResponse(200*time.Millisecond))

	res, err := e.c.WaitForResult(ctx, id, secondPolls)
	require.NoError(t, err)
	assert.Equal(t, runway.SourcePoll, res.Source)
	reqs := e.srv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "slow 200ms", reqs[1].Fault)
}

// TestE2EPollPermanentErrors: a body error code that retrying cannot fix ends the wait with a
// *WaitError that keeps the class, after a single GET.
func TestE2EPollPermanentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault runwaytest.APIFault
		want  error
	}{
		{"HTTP 200 body code 401", runwaytest.BodyError(401, "You do not have access permissions"), runway.ErrUnauthorized},
		{"HTTP 200 body code 402", runwaytest.BodyError(402, "Insufficient credits"), runway.ErrInsufficientCredits},
		{"HTTP 200 body code 422", runwaytest.BodyError(422, "taskId is invalid"), runway.ErrValidation},
		{"HTTP 505", runwaytest.ServerError(505), runway.ErrFeatureDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, nil, nil)
			id := e.submit(t, ctx, "doomed poll", runwaytest.Script{Steps: manual})
			e.srv.InjectFault(runwaytest.PathRecordDetail, 1, tt.fault)

			res, err := e.c.WaitForResult(ctx, id, secondPolls)
			require.Error(t, err)
			assert.Nil(t, res)
			var we *runway.WaitError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, id, we.TaskID)
			assert.ErrorIs(t, err, tt.want)
			var ae *runway.APIError
			assert.ErrorAs(t, err, &ae)
			assert.Equal(t, 1, polls(e.srv))
		})
	}
}

// TestE2EUnknownState: a state the SDK does not know ends the wait with an error naming it;
// it is never taken as "still running".
func TestE2EUnknownState(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "paused task", runwaytest.Script{Steps: manual,
		Poll: runwaytest.PollFaults{UnknownState: "paused"}, Callback: runwaytest.CallbackFaults{Drop: true}})

	res, err := e.c.WaitForResult(ctx, id, secondPolls)
	assert.Nil(t, res)
	var we *runway.WaitError
	require.ErrorAs(t, err, &we)
	assert.ErrorIs(t, err, runway.ErrUnknownState)
	assert.Contains(t, err.Error(), `"paused"`)
	assert.Equal(t, id, we.TaskID)
	assert.Equal(t, 1, polls(e.srv))
}

// TestE2ESubmitFaults runs submission faults through Generate: a 429 is retried honouring
// Retry-After and creates exactly one task; faults after which the task may exist are never
// re-sent and say so (ErrOutcomeUnknown); refusals keep their class.
func TestE2ESubmitFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fault     runwaytest.APIFault
		n         int
		want      []error // nil: success
		wantSent  int     // submissions the fake answered
		wantTasks int
	}{
		{name: "429 with Retry-After, then accepted", fault: runwaytest.RateLimited("1"), n: 2,
			wantSent: 3, wantTasks: 1},
		{name: "429 past the retries", fault: runwaytest.RateLimited("1"), n: 10,
			want: []error{runway.ErrRateLimited}, wantSent: 5},
		{name: "500", fault: runwaytest.ServerError(http.StatusInternalServerError), n: 3,
			want: []error{runway.ErrOutcomeUnknown, runway.ErrServer}, wantSent: 1},
		{name: "503", fault: runwaytest.ServerError(http.StatusServiceUnavailable), n: 3,
			want: []error{runway.ErrOutcomeUnknown}, wantSent: 1},
		{name: "HTTP 200 body code 500", fault: runwaytest.BodyError(500, "Server error"), n: 3,
			want: []error{runway.ErrOutcomeUnknown, runway.ErrServer}, wantSent: 1},
		{name: "HTTP 200 body code 401", fault: runwaytest.BodyError(401, "Unauthorized"), n: 1,
			want: []error{runway.ErrUnauthorized}, wantSent: 1},
		{name: "HTTP 200 body code 402", fault: runwaytest.BodyError(402, "Insufficient credits"), n: 1,
			want: []error{runway.ErrInsufficientCredits}, wantSent: 1},
		{name: "HTTP 200 body code 455", fault: runwaytest.BodyError(455, "Maintenance"), n: 1,
			want: []error{runway.ErrMaintenance}, wantSent: 1},
		{name: "connection reset", fault: runwaytest.ConnectionReset(), n: 3,
			want: []error{runway.ErrOutcomeUnknown}, wantSent: 1},
		{name: "reset after the task was created", fault: runwaytest.AfterProcessing(runwaytest.ConnectionReset()), n: 1,
			want: []error{runway.ErrOutcomeUnknown}, wantSent: 1, wantTasks: 1},
		{name: "non-JSON 502 page", fault: runwaytest.NonJSON(http.StatusBadGateway), n: 3,
			want: []error{runway.ErrOutcomeUnknown}, wantSent: 1},
		{name: "non-JSON 200 page", fault: runwaytest.NonJSON(http.StatusOK), n: 3,
			want: []error{runway.ErrOutcomeUnknown}, wantSent: 1},
		{name: "truncated body", fault: runwaytest.TruncatedBody(), n: 3,
			want: []error{runway.ErrOutcomeUnknown}, wantSent: 1},
		{name: "slow but in time", fault: runwaytest.SlowResponse(50 * time.Millisecond), n: 1,
			wantSent: 1, wantTasks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, nil, nil)
			e.srv.InjectFault(runwaytest.PathGenerate, tt.n, tt.fault)

			id, err := e.c.Generate(ctx, e2eRequest("submit through faults", e.cbURL))
			reqs, werr := e.srv.WaitRequests(ctx, runwaytest.PathGenerate, tt.wantSent)
			require.NoError(t, werr)
			assert.Len(t, reqs, tt.wantSent, "submissions sent")
			assert.Len(t, e.srv.Tasks(), tt.wantTasks, "tasks created")
			if tt.want == nil {
				require.NoError(t, err)
				res, err := e.c.WaitForResult(ctx, id, minutePolls)
				require.NoError(t, err)
				assert.Equal(t, id, res.TaskID)
				return
			}
			assert.Empty(t, id)
			for _, w := range tt.want {
				assert.ErrorIs(t, err, w)
			}
			if !errors.Is(err, runway.ErrOutcomeUnknown) {
				return
			}
			var ae *runway.APIError
			if errors.As(err, &ae) {
				assert.True(t, ae.MayExist)
			}
		})
	}
}

// TestE2ESlowSubmissionPastTimeout: a submission answered after the caller's deadline is an
// unknown outcome, not a failure the caller may blindly retry.
func TestE2ESlowSubmissionPastTimeout(t *testing.T) {
	t.Parallel()
	e := newE2E(t, nil, nil)
	e.srv.InjectFault(runwaytest.PathGenerate, 1, runwaytest.SlowResponse(time.Minute))
	sctx, cancel := context.WithTimeout(ctx(t), time.Second) // ample to send on a loaded machine
	defer cancel()

	id, err := e.c.Generate(sctx, e2eRequest("too slow", e.cbURL))
	assert.Empty(t, id)
	assert.ErrorIs(t, err, runway.ErrOutcomeUnknown)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	reqs, err := e.srv.WaitRequests(ctx(t), runwaytest.PathGenerate, 1)
	require.NoError(t, err)
	assert.Len(t, reqs, 1, "never re-sent")
}

// TestE2EExpiredFiles: a result whose file URLs expired (expireFlag 1, files answering 404)
// is saved anyway: SaveResult refreshes each link once through download-url.
func TestE2EExpiredFiles(t *testing.T) {
	t.Parallel()
	ctx := ctx(t)
	e := newE2E(t, nil, nil)
	id := e.submit(t, ctx, "expired", runwaytest.Script{Steps: manual, Poll: runwaytest.PollFaults{Expired: true}})
	got := e.finishWhileWaiting(t, ctx, id, minutePolls)
	require.NoError(t, got.err)
	assert.Equal(t, runway.SourceCallback, got.res.Source)

	task, err := e.c.GetTask(ctx, id)
	require.NoError(t, err)
	assert.True(t, task.Expired)
	resp, err := http.Get(got.res.VideoURL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the file URL itself is gone")

	dir := t.TempDir()
	saved, err := e.c.SaveResult(ctx, got.res, dir, runway.WithAllowPrivateHosts())
	require.NoError(t, err)
	for path, url := range map[string]string{saved.VideoPath: got.res.VideoURL, saved.ImagePath: got.res.ImageURL} {
		assert.Equal(t, dir, filepath.Dir(path))
		want, ok := e.srv.FileBytes(url)
		require.True(t, ok)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, want, b)
	}
	refreshed, err := e.srv.WaitRequests(ctx, runwaytest.PathDownloadURL, 2)
	require.NoError(t, err)
	assert.Len(t, refreshed, 2, "one refresh per file")
}

// TestE2ENotFoundForms: the fake answers an unknown id in each of Kie's spellings, and the
// client reads every one as ErrNotFound, on both details endpoints.
func TestE2ENotFoundForms(t *testing.T) {
	t.Parallel()
	for _, f := range runwaytest.NotFoundForms() {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			srv := start(t, runwaytest.WithNotFoundForm(f))
			c := client(t, srv)
			_, err := c.GetTask(ctx(t), "no-such-task")
			require.ErrorIs(t, err, runway.ErrNotFound)
			assert.NotErrorIs(t, err, runway.ErrValidation)
			//lint:ignore SA1019 the Aleph endpoint still answers for existing tasks
			_, err = c.GetAlephTask(ctx(t), "no-such-task")
			require.ErrorIs(t, err, runway.ErrNotFound)
		})
	}
}
