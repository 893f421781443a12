package runway

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pollAPI is an in-process http.RoundTripper serving a scripted Kie API through
// httptest.NewRecorder. Nothing touches the network, so tests can run inside a
// testing/synctest bubble where hours of polling take milliseconds of real time.
type pollAPI struct {
	t *testing.T

	mu      sync.Mutex
	scripts map[string][]pollReply // per task id; the last reply repeats; "" is the default
	served  map[string]int         // replies served per task id
	calls   []pollCall
	onGet   func(n int, taskID string) // runs before GET number n (1-based) is answered
}

type pollCall struct {
	at     time.Time
	method string
	path   string
	taskID string
}

// pollReply is one scripted answer to a details request.
type pollReply struct {
	status int // HTTP status; 0 means 200
	body   string
	header map[string]string
	// retryAfterIn sets Retry-After to the HTTP date this long after the request.
	retryAfterIn time.Duration
	err          error // a transport error instead of a response
	hang         bool  // never answer: wait for the request's context to end
}

func newPollAPI(t *testing.T) *pollAPI {
	return &pollAPI{t: t, scripts: make(map[string][]pollReply), served: make(map[string]int)}
}

// script sets the replies for taskID's details requests ("" for any other task id).
func (f *pollAPI) script(taskID string, replies ...pollReply) *pollAPI {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[taskID] = replies
	return f
}

func (f *pollAPI) setOnGet(fn func(n int, taskID string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onGet = fn
}

// gets returns the number of GET requests served so far.
func (f *pollAPI) gets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.method == http.MethodGet {
			n++
		}
	}
	return n
}

// getTimes returns when each GET for taskID was received.
func (f *pollAPI) getTimes(taskID string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ts []time.Time
	for _, c := range f.calls {
		if c.method == http.MethodGet && c.taskID == taskID {
			ts = append(ts, c.at)
		}
	}
	return ts
}

func (f *pollAPI) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps := make([]string, len(f.calls))
	for i, c := range f.calls {
		ps[i] = c.method + " " + c.path
	}
	return ps
}

func (f *pollAPI) RoundTrip(req *http.Request) (*http.Response, error) {
	id := req.URL.Query().Get("taskId")
	f.mu.Lock()
	f.calls = append(f.calls, pollCall{at: time.Now(), method: req.Method, path: req.URL.Path, taskID: id})
	n := len(f.calls)
	var rp pollReply
	if req.Method == http.MethodPost {
		rp = pollReply{body: `{"code":200,"msg":"success","data":{"taskId":"aleph-1"}}`}
	} else {
		key := id
		if _, ok := f.scripts[key]; !ok {
			key = ""
		}
		replies := f.scripts[key]
		if len(replies) == 0 {
			f.mu.Unlock()
			f.t.Errorf("pollAPI: no script for task %q", id)
			return nil, fmt.Errorf("pollAPI: no script for task %q", id)
		}
		rp = replies[min(f.served[key], len(replies)-1)]
		f.served[key]++
	}
	hook := f.onGet
	f.mu.Unlock()

	if hook != nil && req.Method == http.MethodGet {
		hook(n, id)
	}
	switch {
	case rp.hang:
		<-req.Context().Done()
		return nil, req.Context().Err()
	case rp.err != nil:
		return nil, rp.err
	}
	rec := httptest.NewRecorder()
	func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(f.t, "Bearer test-key", r.Header.Get("Authorization"))
		for k, v := range rp.header {
			w.Header().Set(k, v)
		}
		if rp.retryAfterIn != 0 {
			w.Header().Set("Retry-After", time.Now().Add(rp.retryAfterIn).UTC().Format(http.TimeFormat))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(cmp.Or(rp.status, http.StatusOK))
		_, _ = io.WriteString(w, rp.body)
	}(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// newPollClient returns a client whose API calls go to f.
func newPollClient(t *testing.T, f *pollAPI, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{
		WithBaseURL("https://api.kie.test"),
		WithHTTPClient(&http.Client{Transport: f}),
	}, opts...)
	c, err := NewClient("test-key", opts...)
	require.NoError(t, err)
	return c
}

// Scripted replies.

func pollStateReply(id string, s State) pollReply {
	return pollReply{body: fmt.Sprintf(`{"code":200,"msg":"success","data":{"taskId":%s,"state":%s}}`, js(id), js(string(s)))}
}

func pollSuccessReply(id string) pollReply {
	return pollReply{body: fmt.Sprintf(`{"code":200,"msg":"success","data":{"taskId":%s,"state":"success",`+
		`"videoInfo":{"videoId":"v-%[2]s","videoUrl":"https://file.test/%[2]s.mp4","imageUrl":"https://file.test/%[2]s.png"}}}`, js(id), id)}
}

func pollFailReply(id, msg string) pollReply {
	return pollReply{body: fmt.Sprintf(`{"code":200,"msg":"success","data":{"taskId":%s,"state":"fail","failCode":400,"failMsg":%s}}`, js(id), js(msg))}
}

func pollEnvelopeReply(status, code int, msg string) pollReply {
	return pollReply{status: status, body: fmt.Sprintf(`{"code":%d,"msg":%s,"data":null}`, code, js(msg))}
}

// js returns s as a JSON string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// callbackResult is the result a CallbackHandler publishes for an accepted callback.
func callbackResult(id string) *Result {
	return &Result{TaskID: id, VideoID: "v-" + id, VideoURL: "https://file.test/" + id + ".mp4", Code: 200, Message: "success", Source: SourceCallback}
}

type waitOutcome struct {
	res *Result
	err error
}

// startWait runs WaitForResult on its own goroutine and returns the channel of its outcome.
func startWait(ctx context.Context, c *Client, id string, opts ...WaitOption) <-chan waitOutcome {
	done := make(chan waitOutcome, 1)
	go func() {
		res, err := c.WaitForResult(ctx, id, opts...)
		done <- waitOutcome{res, err}
	}()
	return done
}
