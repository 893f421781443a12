package runwaytest_test

//lint:file-ignore SA1019 these tests cover Aleph, which is deprecated but must keep working for existing tasks

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// raw sends a request with the server's key and returns the HTTP status and decoded envelope.
func raw(t *testing.T, srv *runwaytest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+srv.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, decode(t, b)
}

// A wrong key is HTTP 200 with body code 401, and the client maps it to ErrUnauthorized.
func TestAuth(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithAPIKey("right"))
	c, err := runway.NewClient("wrong", runway.WithBaseURL(srv.URL))
	require.NoError(t, err)
	_, err = c.Credits(ctx(t))
	require.ErrorIs(t, err, runway.ErrUnauthorized)
	var ae *runway.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusOK, ae.StatusCode)
	require.Equal(t, "You do not have access permissions", ae.Message)

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	require.False(t, reqs[0].Authorized)
	require.Equal(t, 401, reqs[0].Code)
	require.Empty(t, reqs[0].Header.Get("Authorization"), "the key is never recorded")

	n, err := client(t, srv).Credits(ctx(t))
	require.NoError(t, err)
	require.Equal(t, runwaytest.DefaultCredits, n)
}

// WithHTTPStatusErrors mirrors application error codes in the HTTP status.
func TestHTTPStatusErrors(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithHTTPStatusErrors())
	status, env := raw(t, srv, http.MethodGet, runwaytest.PathRecordDetail+"?taskId=nope", "")
	require.Equal(t, http.StatusNotFound, status)
	require.EqualValues(t, 404, env["code"])
}

// Bad parameters are body code 422 naming the field (400 for malformed JSON).
func TestValidation(t *testing.T) {
	t.Parallel()
	srv := start(t)
	long := strings.Repeat("é", 1801)
	cases := []struct {
		path, body string
		code       int
		msg        string
	}{
		{runwaytest.PathGenerate, `{`, 400, "Malformed"},
		{runwaytest.PathGenerate, `{"prompt":1}`, 422, "prompt"},
		{runwaytest.PathGenerate, `{"duration":5,"quality":"720p","aspectRatio":"16:9"}`, 422, "prompt"},
		{runwaytest.PathGenerate, `{"prompt":"` + long + `","duration":5,"quality":"720p","aspectRatio":"16:9"}`, 422, "1800"},
		{runwaytest.PathGenerate, `{"prompt":"p","duration":8,"quality":"720p","aspectRatio":"16:9"}`, 422, "duration"},
		{runwaytest.PathGenerate, `{"prompt":"p","quality":"720p","aspectRatio":"16:9"}`, 422, "duration"},
		{runwaytest.PathGenerate, `{"prompt":"p","duration":5,"quality":"4k","aspectRatio":"16:9"}`, 422, "quality"},
		{runwaytest.PathGenerate, `{"prompt":"p","duration":10,"quality":"1080p","aspectRatio":"16:9"}`, 422, "1080p"},
		{runwaytest.PathGenerate, `{"prompt":"p","duration":5,"quality":"720p"}`, 422, "aspectRatio"},
		{runwaytest.PathGenerate, `{"prompt":"p","duration":5,"quality":"720p","aspectRatio":"21:9"}`, 422, "aspectRatio"},
		{runwaytest.PathGenerate, `{"prompt":"p","duration":5,"quality":"720p","imageUrl":"ftp://x/y"}`, 422, "imageUrl"},
		{runwaytest.PathGenerate, `{"prompt":"p","duration":5,"quality":"720p","aspectRatio":"1:1","callBackUrl":"/relative"}`, 422, "callBackUrl"},
		{runwaytest.PathExtend, `{"prompt":"p","quality":"720p"}`, 422, "taskId"},
		{runwaytest.PathExtend, `{"taskId":"x","quality":"720p"}`, 422, "prompt"},
		{runwaytest.PathExtend, `{"taskId":"x","prompt":"p"}`, 422, "quality"},
		{runwaytest.PathAlephGenerate, `{"prompt":"p"}`, 422, "videoUrl"},
		{runwaytest.PathAlephGenerate, `{"videoUrl":"https://e.com/v.mp4"}`, 422, "prompt"},
		{runwaytest.PathAlephGenerate, `{"prompt":"p","videoUrl":"https://e.com/v.mp4","aspectRatio":"2:1"}`, 422, "aspectRatio"},
		{runwaytest.PathAlephGenerate, `{"prompt":"p","videoUrl":"https://e.com/v.mp4","seed":"x"}`, 422, "seed"},
		{runwaytest.PathDownloadURL, `{}`, 422, "url"},
		{runwaytest.PathDownloadURL, `{"url":"https://example.com/a.mp4"}`, 422, "not a file"},
	}
	for _, tc := range cases {
		status, env := raw(t, srv, http.MethodPost, tc.path, tc.body)
		require.Equal(t, http.StatusOK, status, tc.body)
		require.EqualValues(t, tc.code, env["code"], tc.body)
		require.Contains(t, env["msg"], tc.msg, tc.body)
		require.Nil(t, env["data"])
	}
	// The documented string duration and the text-only example are accepted.
	for _, body := range []string{
		`{"prompt":"p","duration":"5","quality":"1080p","aspectRatio":"9:16"}`,
		`{"prompt":"p","duration":10,"quality":"720p","imageUrl":"https://e.com/i.png","model":"runway-duration-5-generate"}`,
	} {
		_, env := raw(t, srv, http.MethodPost, runwaytest.PathGenerate, body)
		require.EqualValues(t, 200, env["code"], body)
		require.NotEmpty(t, env["data"].(map[string]any)["taskId"])
	}
	require.Len(t, srv.Tasks(), 2, "refused submissions create no task")

	status, env := raw(t, srv, http.MethodGet, runwaytest.PathGenerate, "")
	require.Equal(t, http.StatusMethodNotAllowed, status)
	require.EqualValues(t, 405, env["code"])
	status, env = raw(t, srv, http.MethodGet, "/api/v1/nope", "")
	require.Equal(t, http.StatusNotFound, status)
	require.EqualValues(t, 404, env["code"])
	_, env = raw(t, srv, http.MethodGet, runwaytest.PathRecordDetail, "")
	require.EqualValues(t, 422, env["code"])
}

// Requests are recorded with their decoded body, headers minus the key, and the answer.
func TestRequestsRecorded(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	id, err := c.Generate(ctx(t), genReq("https://example.com/cb"))
	require.NoError(t, err)
	_, err = c.GetTask(ctx(t), id)
	require.NoError(t, err)
	reqs, err := srv.WaitRequests(ctx(t), "", 2)
	require.NoError(t, err)
	gen := reqs[0]
	require.Equal(t, http.MethodPost, gen.Method)
	require.Equal(t, runwaytest.PathGenerate, gen.Path)
	require.Equal(t, "a cat surfing a wave", gen.Body["prompt"])
	require.Equal(t, json.Number("5"), gen.Body["duration"])
	require.Equal(t, "https://example.com/cb", gen.Body["callBackUrl"])
	require.True(t, gen.Authorized)
	require.Empty(t, gen.Header.Get("Authorization"))
	require.Equal(t, "application/json", gen.Header.Get("Content-Type"))
	require.Equal(t, http.StatusOK, gen.Status)
	require.Equal(t, 200, gen.Code)
	require.Equal(t, id, reqs[1].Query.Get("taskId"))
	only, err := srv.WaitRequests(ctx(t), runwaytest.PathRecordDetail, 1)
	require.NoError(t, err)
	require.Len(t, only, 1)
}

// Every API fault reaches the client as the error it stands for; a fault only delays or
// replaces the answer, the next request is normal again.
func TestAPIFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault runwaytest.APIFault
		check func(t *testing.T, err error)
	}{
		{"429 seconds", runwaytest.RateLimited("7"), func(t *testing.T, err error) {
			require.ErrorIs(t, err, runway.ErrRateLimited)
			var ae *runway.APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 7*time.Second, ae.RetryAfter)
			require.Equal(t, http.StatusTooManyRequests, ae.StatusCode)
		}},
		{"429 malformed", runwaytest.RateLimited("soon"), func(t *testing.T, err error) {
			var ae *runway.APIError
			require.ErrorAs(t, err, &ae)
			require.Zero(t, ae.RetryAfter)
		}},
		{"500", runwaytest.ServerError(500), func(t *testing.T, err error) { require.ErrorIs(t, err, runway.ErrServer) }},
		{"503", runwaytest.ServerError(503), func(t *testing.T, err error) {
			var ae *runway.APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 503, ae.StatusCode)
		}},
		{"200 code 455", runwaytest.BodyError(455, "maintenance"), func(t *testing.T, err error) {
			require.ErrorIs(t, err, runway.ErrMaintenance)
		}},
		{"200 code 401", runwaytest.BodyError(401, "no"), func(t *testing.T, err error) {
			require.ErrorIs(t, err, runway.ErrUnauthorized)
		}},
		{"non-JSON 200", runwaytest.NonJSON(200), func(t *testing.T, err error) {
			var ae *runway.APIError
			require.ErrorAs(t, err, &ae)
			require.Contains(t, ae.Message, "not a JSON envelope")
		}},
		{"non-JSON 502", runwaytest.NonJSON(502), func(t *testing.T, err error) {
			var ae *runway.APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 502, ae.StatusCode)
		}},
		{"truncated", runwaytest.TruncatedBody(), func(t *testing.T, err error) {
			var ae *runway.APIError
			require.False(t, errors.As(err, &ae), "EOF mid-body is a transport error: %v", err)
			require.ErrorContains(t, err, "EOF")
		}},
		{"huge body", runwaytest.HugeBody(50 << 20), func(t *testing.T, err error) {
			var ae *runway.APIError
			require.ErrorAs(t, err, &ae)
			require.Contains(t, ae.Message, "larger than")
		}},
		{"reset", runwaytest.ConnectionReset(), func(t *testing.T, err error) {
			var ae *runway.APIError
			require.False(t, errors.As(err, &ae), "a reset is a transport error: %v", err)
			require.Error(t, err)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t)
			c := client(t, srv, runway.WithMaxRetries(0))
			srv.InjectFault(runwaytest.PathCredit, 1, tc.fault)
			_, err := c.Credits(ctx(t))
			tc.check(t, err)
			reqs, err := srv.WaitRequests(ctx(t), "", 1) // the client may return before the handler does
			require.NoError(t, err)
			require.Len(t, reqs, 1)
			require.Equal(t, tc.fault.Name(), reqs[0].Fault)
			n, err := c.Credits(ctx(t))
			require.NoError(t, err, "the fault is used up")
			require.Equal(t, runwaytest.DefaultCredits, n)
		})
	}
}

// A burst of faults shorter than the client's retries is absorbed by a safe request; faults
// for another path are left alone; a slow answer still arrives.
func TestFaultBurstRetried(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv, runway.WithMaxRetries(4))
	srv.InjectFault(runwaytest.PathRecordDetail, 1, runwaytest.ConnectionReset())
	srv.InjectFault(runwaytest.PathRecordDetail, 2, runwaytest.ServerError(502))
	srv.InjectFault(runwaytest.PathRecordDetail, 1, runwaytest.SlowResponse(5*time.Millisecond))
	srv.InjectFault(runwaytest.PathAlephRecordInfo, 1, runwaytest.ServerError(500))
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, id, task.ID)
	reqs, err := srv.WaitRequests(ctx(t), runwaytest.PathRecordDetail, 4)
	require.NoError(t, err)
	require.Len(t, reqs, 4)
	// Requests are recorded when their handler ends, and a reset's handler can end after the
	// client has already sent its retry: compare the faults served, not the recording order.
	faults := []string{reqs[0].Fault, reqs[1].Fault, reqs[2].Fault, reqs[3].Fault}
	require.ElementsMatch(t, []string{"reset", "HTTP 502 code 502", "HTTP 502 code 502", "slow 5ms"}, faults)
	for _, r := range reqs {
		if r.Fault == "reset" {
			require.Equal(t, 0, r.Status, "a reset answers nothing")
		}
	}
}

// A submission answered 429 creates no task and the client retries it.
func TestSubmissionRateLimitFault(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	srv.InjectFault("", 2, runwaytest.RateLimited("0"))
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	require.Len(t, srv.Tasks(), 1)
	require.Equal(t, id, srv.Tasks()[0].ID)
	require.Len(t, srv.Requests(), 3)
}

// A fault after processing loses the answer of a submission that created its task: the client
// reports an unknown outcome, and the task exists and runs.
func TestLostSubmissionAnswer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault runwaytest.APIFault
	}{
		{"reset", runwaytest.ConnectionReset()},
		{"500", runwaytest.ServerError(500)},
		{"truncated", runwaytest.TruncatedBody()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t)
			c := client(t, srv)
			srv.InjectFault(runwaytest.PathGenerate, 1, runwaytest.AfterProcessing(tc.fault))
			_, err := c.Generate(ctx(t), genReq(""))
			require.ErrorIs(t, err, runway.ErrOutcomeUnknown)
			reqs, err := srv.WaitRequests(ctx(t), runwaytest.PathGenerate, 1)
			require.NoError(t, err)
			require.Len(t, reqs, 1, "a submission is never re-sent")
			require.Equal(t, "after processing: "+tc.fault.Name(), reqs[0].Fault)
			tasks := srv.Tasks()
			require.Len(t, tasks, 1)
			_, err = srv.WaitTerminal(ctx(t), tasks[0].ID)
			require.NoError(t, err)
		})
	}
	srv := start(t)
	c := client(t, srv)
	srv.InjectFault(runwaytest.PathGenerate, 1, runwaytest.AfterProcessing(runwaytest.SlowResponse(time.Millisecond)))
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err, "a delay alone keeps the real answer")
	_, ok := srv.Task(id)
	require.True(t, ok)
}

// failCode as a string, unknown states, missing videoInfo and expired files.
func TestPollFaults(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithManualSteps())
	c := client(t, srv)

	srv.ScriptNext(1, runwaytest.Script{Outcome: runwaytest.FailSize(), Poll: runwaytest.PollFaults{FailCodeAsString: true}})
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, "", decode(t, task.Raw)["failCode"])
	_, err = srv.Finish(id)
	require.NoError(t, err)
	task, err = c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, "400", decode(t, task.Raw)["failCode"])
	require.Equal(t, 400, task.FailCode)

	srv.ScriptNext(1, runwaytest.Script{Poll: runwaytest.PollFaults{UnknownState: "paused"}})
	id, err = c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	task, err = c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, runway.State("paused"), task.State)
	require.False(t, task.State.Known())
	srv.ScriptNext(1, runwaytest.Script{Poll: runwaytest.PollFaults{UnknownState: "paused"}})
	aid, err := c.GenerateAleph(ctx(t), runway.AlephRequest{Prompt: "p", VideoURL: "https://e.com/v.mp4"})
	require.NoError(t, err)
	task, err = c.GetAlephTask(ctx(t), aid)
	require.NoError(t, err)
	require.False(t, task.State.Known())

	srv.ScriptNext(1, runwaytest.Script{Poll: runwaytest.PollFaults{NoVideoInfo: true}})
	id, err = c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	_, err = srv.Finish(id)
	require.NoError(t, err)
	task, err = c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, runway.StateSuccess, task.State)
	require.Empty(t, task.VideoURL)
	require.Nil(t, decode(t, task.Raw)["videoInfo"])
}

// An expired task reports expireFlag 1, its file URLs answer 404, and download-url hands out
// a temporary URL that serves the file until it lapses on the server clock.
func TestExpiredFiles(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := start(t, runwaytest.WithClock(clock.Now))
	c := client(t, srv)
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	info, err := srv.WaitTerminal(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, get(t, info.VideoURL).status)

	require.NoError(t, srv.Expire(id))
	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.True(t, task.Expired)
	require.Equal(t, http.StatusNotFound, get(t, task.VideoURL).status)
	require.Equal(t, http.StatusNotFound, get(t, task.ImageURL).status)

	tmp, err := c.DownloadURL(ctx(t), task.VideoURL)
	require.NoError(t, err)
	require.NotEqual(t, task.VideoURL, tmp)
	want, _ := srv.FileBytes(task.VideoURL)
	r := get(t, tmp)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, want, r.body)
	require.Equal(t, http.StatusNotFound, get(t, task.VideoURL).status, "the original stays expired")

	clock.Advance(runwaytest.DownloadURLTTL)
	require.Equal(t, http.StatusNotFound, get(t, tmp).status, "temporary URLs lapse")

	_, err = c.DownloadURL(ctx(t), "https://example.com/video.mp4")
	require.ErrorIs(t, err, runway.ErrValidation)
	_, err = c.DownloadURL(ctx(t), srv.URL+"/files/0123/video.mp4")
	require.ErrorIs(t, err, runway.ErrNotFound)
}

// Expired from the script: files are never served directly.
func TestExpiredFromScript(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	srv.ScriptNext(1, runwaytest.Script{Poll: runwaytest.PollFaults{Expired: true}})
	id, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)
	info, err := srv.WaitTerminal(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, get(t, info.VideoURL).status)
	task, err := c.GetTask(ctx(t), id)
	require.NoError(t, err)
	require.True(t, task.Expired)
}

type response struct {
	status int
	body   []byte
}

func get(t *testing.T, url string) response {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, b}
}

// Kie's limit: 20 submissions per 10 s; the 21st gets HTTP 429 with a Retry-After telling
// when the oldest one leaves the window, and is not counted.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := start(t, runwaytest.WithRateLimit(20, 10*time.Second), runwaytest.WithClock(clock.Now))
	c := client(t, srv, runway.WithMaxRetries(0))
	for i := range 20 {
		_, err := c.Generate(ctx(t), genReq(""))
		require.NoError(t, err, i)
		if i == 0 {
			clock.Advance(2500 * time.Millisecond)
		}
	}
	for range 2 {
		_, err := c.Generate(ctx(t), genReq(""))
		require.ErrorIs(t, err, runway.ErrRateLimited)
		var ae *runway.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, http.StatusTooManyRequests, ae.StatusCode)
		require.Equal(t, 8*time.Second, ae.RetryAfter, "7.5 s rounded up")
	}
	clock.Advance(7500 * time.Millisecond)
	_, err := c.Generate(ctx(t), genReq(""))
	require.NoError(t, err, "the first submission left the window")
	_, err = c.Generate(ctx(t), genReq(""))
	require.ErrorIs(t, err, runway.ErrRateLimited)
	require.Len(t, srv.Tasks(), 21)

	// Polls are not limited.
	_, err = c.Credits(ctx(t))
	require.NoError(t, err)
}

// Zero credits refuse submissions with 402.
func TestCredits(t *testing.T) {
	t.Parallel()
	srv := start(t)
	c := client(t, srv)
	srv.SetCredits(3)
	n, err := c.Credits(ctx(t))
	require.NoError(t, err)
	require.Equal(t, 3, n)
	srv.SetCredits(0)
	_, err = c.Generate(ctx(t), genReq(""))
	require.ErrorIs(t, err, runway.ErrInsufficientCredits)
	require.Empty(t, srv.Tasks())
}

// clock is a manual clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
