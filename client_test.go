package runway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKey is the API key used against the fakes; tests search for it in errors and logs.
const testKey = "sk-test-SECRET-4f1c2b7e9a"

// apiPrefix is where the fake API is mounted, to catch absolute-path bugs in URL building.
const apiPrefix = "/api-prefix"

// recordedRequest is one request as the fake received it.
type recordedRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// fakeAPI records what the client sent, and when.
type fakeAPI struct {
	mu   sync.Mutex
	reqs []recordedRequest
	at   []time.Time
}

func (f *fakeAPI) requests() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.reqs...)
}

func (f *fakeAPI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// waits returns the time between consecutive requests: inside a synctest bubble, exactly the
// waits the client made between its attempts.
func (f *fakeAPI) waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var w []time.Duration
	for i := 1; i < len(f.at); i++ {
		w = append(w, f.at[i].Sub(f.at[i-1]))
	}
	return w
}

// setup starts a fake API under apiPrefix that records every request and answers with
// handler (which sees paths without the prefix), and a client pointed at it. Both talk over
// an in-memory pipeNet, so setup works inside a synctest bubble: tests whose calls retry run
// there, and their waits take no real time.
func setup(t *testing.T, handler http.HandlerFunc, opts ...Option) (*Client, *fakeAPI) {
	t.Helper()
	f := &fakeAPI{}
	mux := http.NewServeMux()
	mux.Handle(apiPrefix+"/", http.StripPrefix(apiPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		f.mu.Lock()
		f.reqs = append(f.reqs, recordedRequest{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: body,
		})
		f.at = append(f.at, time.Now())
		f.mu.Unlock()
		handler(w, r)
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		assert.Failf(t, "request outside the base URL", "%s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	srv, hc := newPipeServer(mux)
	t.Cleanup(srv.Close)
	// A test that gives its own *http.Client (for its timeout) without a Transport gets the
	// pipe's, so it still reaches the fake.
	var given clientConfig
	for _, o := range opts {
		if o.apply != nil {
			_ = o.apply(&given)
		}
	}
	if given.hc != nil && given.hc.Transport == nil {
		given.hc.Transport = hc.Transport
	}
	c, err := NewClient(testKey, append([]Option{WithBaseURL(srv.URL + apiPrefix), WithHTTPClient(hc)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, c.Close())
		c.hc.CloseIdleConnections()
	})
	return c, f
}

// reply writes an envelope with the given HTTP status and body code.
func reply(w http.ResponseWriter, status, code int, msg string, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "msg": msg, "data": data})
}

// replyTaskID answers a submission with a task id.
func replyTaskID(id string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, 200, "success", map[string]string{"taskId": id})
	}
}

// replyFixture answers with a file from testdata.
func replyFixture(t *testing.T, name string) http.HandlerFunc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		opts    []Option
		wantIs  error
		wantMsg []string
	}{
		{name: "defaults", key: testKey},
		{name: "zero option ignored", key: testKey, opts: []Option{{}}},
		{name: "base URL with prefix", key: testKey, opts: []Option{WithBaseURL("http://127.0.0.1:1/api-prefix/")}},
		{name: "empty key", key: "", wantIs: ErrMissingAPIKey},
		{name: "blank key", key: "  \t", wantIs: ErrMissingAPIKey},
		{name: "key with newline", key: testKey + "\n", wantMsg: []string{"API key contains spaces or control characters"}},
		{name: "relative base URL", key: testKey, opts: []Option{WithBaseURL("/api")}, wantMsg: []string{"WithBaseURL"}},
		{name: "non-http base URL", key: testKey, opts: []Option{WithBaseURL("ftp://api.kie.ai")}, wantMsg: []string{"WithBaseURL", "http or https"}},
		{name: "base URL without host", key: testKey, opts: []Option{WithBaseURL("https://")}, wantMsg: []string{"WithBaseURL", "no host"}},
		{name: "base URL with query", key: testKey, opts: []Option{WithBaseURL("https://api.kie.ai/?token=x")}, wantMsg: []string{"WithBaseURL", "query"}},
		{name: "unparsable base URL", key: testKey, opts: []Option{WithBaseURL("http://[::1")}, wantMsg: []string{"WithBaseURL", "invalid URL"}},
		{name: "nil HTTP client", key: testKey, opts: []Option{WithHTTPClient(nil)}, wantMsg: []string{"WithHTTPClient"}},
		{name: "negative retries", key: testKey, opts: []Option{WithMaxRetries(-1)}, wantMsg: []string{"WithMaxRetries"}},
		{name: "bad backoff", key: testKey, opts: []Option{WithRetryBackoff(time.Second, time.Millisecond)}, wantMsg: []string{"WithRetryBackoff"}},
		{name: "relative callback URL", key: testKey, opts: []Option{WithCallbackURL("kie/callback")}, wantMsg: []string{"WithCallbackURL"}},
		{name: "nil result bus", key: testKey, opts: []Option{WithResultBus(nil)}, wantMsg: []string{"WithResultBus"}},
		{
			name: "several errors reported together", key: "",
			opts:   []Option{WithBaseURL("api.kie.ai"), WithHTTPClient(nil), WithMaxRetries(-3), WithCallbackURL("javascript:alert(1)")},
			wantIs: ErrMissingAPIKey, wantMsg: []string{"WithBaseURL", "WithHTTPClient", "WithMaxRetries", "WithCallbackURL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClient(tt.key, tt.opts...)
			if tt.wantIs == nil && tt.wantMsg == nil {
				require.NoError(t, err)
				require.NotNil(t, c)
				require.NoError(t, c.Close())
				return
			}
			require.Error(t, err)
			require.Nil(t, c)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			for _, m := range tt.wantMsg {
				require.ErrorContains(t, err, m)
			}
			require.NotContains(t, err.Error(), testKey)
		})
	}
}

func TestSubmissionsSendExactJSON(t *testing.T) {
	t.Parallel()
	seed0 := 0
	tests := []struct {
		name     string
		opts     []Option
		call     func(context.Context, *Client) (string, error)
		wantPath string
		wantJSON string
	}{
		{
			name: "generate text-only omits optional fields",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Generate(ctx, GenerateRequest{Prompt: "a cat surfing", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9})
			},
			wantPath: "/api/v1/runway/generate",
			wantJSON: `{"prompt":"a cat surfing","duration":5,"quality":"720p","aspectRatio":"16:9","waterMark":""}`,
		},
		{
			name: "generate with every field",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Generate(ctx, GenerateRequest{
					Prompt: "animate it", ImageURL: "https://example.com/cat.jpg", Duration: 10, Quality: Quality720p,
					AspectRatio: AspectRatio9x16, WaterMark: "kie.ai", CallBackURL: "https://api.example.com/callback",
				})
			},
			wantPath: "/api/v1/runway/generate",
			wantJSON: `{"prompt":"animate it","imageUrl":"https://example.com/cat.jpg","duration":10,"quality":"720p","aspectRatio":"9:16","waterMark":"kie.ai","callBackUrl":"https://api.example.com/callback"}`,
		},
		{
			name: "generate from an image needs no aspect ratio; default callback fills in",
			opts: []Option{WithCallbackURL("https://hooks.example.com/kie")},
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Generate(ctx, GenerateRequest{Prompt: "p", ImageURL: "http://example.com/i.png", Duration: 5, Quality: Quality1080p})
			},
			wantPath: "/api/v1/runway/generate",
			wantJSON: `{"prompt":"p","imageUrl":"http://example.com/i.png","duration":5,"quality":"1080p","waterMark":"","callBackUrl":"https://hooks.example.com/kie"}`,
		},
		{
			name: "request callback wins over the default",
			opts: []Option{WithCallbackURL("https://hooks.example.com/kie")},
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Extend(ctx, ExtendRequest{TaskID: "ee603959", Prompt: "more", Quality: Quality720p, CallBackURL: "https://other.example.com/cb"})
			},
			wantPath: "/api/v1/runway/extend",
			wantJSON: `{"taskId":"ee603959","prompt":"more","quality":"720p","waterMark":"","callBackUrl":"https://other.example.com/cb"}`,
		},
		{
			name: "extend",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Extend(ctx, ExtendRequest{TaskID: "ee603959", Prompt: "the cat keeps dancing", Quality: Quality1080p, WaterMark: "wm"})
			},
			wantPath: "/api/v1/runway/extend",
			wantJSON: `{"taskId":"ee603959","prompt":"the cat keeps dancing","quality":"1080p","waterMark":"wm"}`,
		},
		{
			name: "aleph minimal",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.GenerateAleph(ctx, AlephRequest{Prompt: "make it snow", VideoURL: "https://example.com/in.mp4"})
			},
			wantPath: "/api/v1/aleph/generate",
			wantJSON: `{"prompt":"make it snow","videoUrl":"https://example.com/in.mp4","waterMark":"","uploadCn":false}`,
		},
		{
			name: "aleph with every field, seed 0 is sent",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.GenerateAleph(ctx, AlephRequest{
					Prompt: "eagle", VideoURL: "https://example.com/in.mp4", AspectRatio: AspectRatio21x9, Seed: &seed0,
					ReferenceImage: "https://example.com/ref.png", WaterMark: "kie.ai", CallBackURL: "https://api.example.com/cb", UploadCN: true,
				})
			},
			wantPath: "/api/v1/aleph/generate",
			wantJSON: `{"prompt":"eagle","videoUrl":"https://example.com/in.mp4","aspectRatio":"21:9","seed":0,"referenceImage":"https://example.com/ref.png","waterMark":"kie.ai","callBackUrl":"https://api.example.com/cb","uploadCn":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, replyTaskID("task-123"), tt.opts...)
			id, err := tt.call(t.Context(), c)
			require.NoError(t, err)
			require.Equal(t, "task-123", id)

			reqs := f.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			require.Equal(t, http.MethodPost, r.Method)
			require.Equal(t, tt.wantPath, r.Path)
			require.Empty(t, r.RawQuery)
			require.JSONEq(t, tt.wantJSON, string(r.Body))
			require.Equal(t, "Bearer "+testKey, r.Header.Get("Authorization"))
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			require.Contains(t, r.Header.Get("User-Agent"), "runway-go/"+Version)
		})
	}
}

func TestGenerateAlephRemembersTaskID(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, replyTaskID("aleph-77"))
	id, err := c.GenerateAleph(t.Context(), AlephRequest{Prompt: "p", VideoURL: "https://example.com/v.mp4"})
	require.NoError(t, err)
	require.True(t, c.aleph.has(id), "WaitForResult must know to poll the Aleph endpoint")
	require.False(t, c.aleph.has("other"))
}

func TestIDSetForgetsOldestFirst(t *testing.T) {
	t.Parallel()
	s := newIDSet(2)
	s.put("a", struct{}{})
	s.put("b", struct{}{})
	s.put("a", struct{}{}) // already there: no eviction
	s.put("c", struct{}{})
	require.False(t, s.has("a"))
	require.True(t, s.has("b"))
	require.True(t, s.has("c"))

	m := newBoundedMap[int](2)
	m.put("a", 1)
	m.put("b", 2)
	m.put("a", 3) // replaced in place: "a" is still the oldest
	m.put("c", 4)
	_, ok := m.get("a")
	require.False(t, ok)
	v, ok := m.get("c")
	require.True(t, ok)
	require.Equal(t, 4, v)
	var empty *boundedMap[int]
	_, ok = empty.get("a")
	require.False(t, ok, "a nil map is empty")
}

func TestSubmissionWithoutUsableTaskID(t *testing.T) {
	t.Parallel()
	tests := map[string]any{
		"no data":         nil,
		"empty task id":   map[string]string{"taskId": ""},
		"task id wrong":   map[string]int{"taskId": 5},
		"hostile task id": map[string]string{"taskId": "a\nb"},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, 200, "success", data) })
			_, err := c.Generate(t.Context(), GenerateRequest{Prompt: "p", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio1x1})
			require.ErrorIs(t, err, ErrOutcomeUnknown, "code 200 without an id: the task may exist")
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, "/api/v1/runway/generate", ae.Path)
			require.Equal(t, 1, f.count())
		})
	}
}

func TestGetTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture string
		want    Task
	}{
		{
			fixture: "record_detail_success.json",
			want: Task{
				ID: "ee603959-debb-48d1-98c4-a6d1c717eba6", State: StateSuccess,
				VideoID: "485da89c-7fca-4340-8c04-101025b2ae71", VideoURL: "https://file.com/k/xxxxxxx.mp4",
				ImageURL: "https://file.com/m/xxxxxxxx.png", GeneratedAt: time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC),
			},
		},
		{
			fixture: "record_detail_fail_number.json",
			want: Task{
				ID: "task-fail-1", ParentID: "task-parent", State: StateFail, FailCode: 400,
				FailMessage: "Your prompt was caught by our AI moderator.", GeneratedAt: time.Date(2023, 8, 15, 12, 30, 45, 0, time.UTC),
			},
		},
		{
			fixture: "record_detail_fail_string.json",
			want:    Task{ID: "task-fail-2", State: StateFail, FailCode: 400, FailCodeText: "400", FailMessage: "Reached the limit for concurrent generations."},
		},
		{
			fixture: "record_detail_fail_text_code.json",
			want: Task{
				ID: "task-fail-text", State: StateFail, FailCodeText: "E_MODERATION", Expired: true,
				FailMessage: "Your prompt was caught by our AI moderator.", GeneratedAt: time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC),
			},
		},
		{
			fixture: "record_detail_fail_null_code.json",
			want: Task{
				ID: "task-fail-null", State: StateFail, FailMessage: "Incorrect image format", Expired: true,
				GeneratedAt: time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC),
			},
		},
		{
			fixture: "record_detail_fail_empty_code.json",
			want: Task{
				ID: "task-fail-empty", State: StateFail, FailMessage: "Reached the limit for concurrent generations.",
				GeneratedAt: time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC),
			},
		},
		{
			fixture: "record_detail_success_stray_code.json",
			want: Task{
				ID: "task-stray", State: StateSuccess, VideoID: "v-stray", VideoURL: "https://file.com/k/stray.mp4",
				ImageURL: "https://file.com/m/stray.png", FailCode: 400, FailMessage: "Generation failed, please try again later",
				GeneratedAt: time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC),
			},
		},
		{
			fixture: "record_detail_old_shape.json",
			want:    Task{ID: "task-old", State: StateGenerating},
		},
		{
			fixture: "record_detail_expired.json",
			want: Task{
				ID: "task-expired", State: StateSuccess, VideoID: "v1", VideoURL: "https://file.com/k/old.mp4",
				ImageURL: "https://file.com/m/old.png", Expired: true, GeneratedAt: time.Date(2023, 8, 1, 10, 0, 0, 0, time.UTC),
			},
		},
		{
			fixture: "record_detail_unknown_state.json",
			want:    Task{ID: "task-odd", State: "paused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, replyFixture(t, tt.fixture))
			_, err := c.GetTask(t.Context(), "ee603959 &x=1")
			require.ErrorIs(t, err, ErrInvalidRequest, "a task id with a space is refused locally")
			require.Zero(t, f.count())

			got, err := c.GetTask(t.Context(), tt.want.ID)
			require.NoError(t, err)
			require.NotEmpty(t, got.Raw)
			require.True(t, json.Valid(got.Raw))
			got.Raw = nil
			require.Equal(t, []string{testKey}, got.secrets, "the client's key rides along for Result().Err()")
			got.secrets = nil
			require.Equal(t, tt.want, *got)

			reqs := f.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, http.MethodGet, reqs[0].Method)
			require.Equal(t, "/api/v1/runway/record-detail", reqs[0].Path)
			require.Equal(t, "taskId="+tt.want.ID, reqs[0].RawQuery)
			require.Equal(t, "Bearer "+testKey, reqs[0].Header.Get("Authorization"))
			require.Contains(t, reqs[0].Header.Get("User-Agent"), "runway-go/"+Version)
		})
	}
}

func TestGetTaskUnknownStateIsNotRunning(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, replyFixture(t, "record_detail_unknown_state.json"))
	got, err := c.GetTask(t.Context(), "task-odd")
	require.NoError(t, err, "an unknown state decodes; the poller decides")
	require.False(t, got.State.Known())
	require.False(t, got.State.Terminal())
}

func TestGetTaskUnusableData(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"data not object": `{"code":200,"msg":"success","data":"done"}`,
		"state as number": `{"code":200,"msg":"success","data":{"taskId":"t","state":3}}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })
			_, err := c.GetTask(t.Context(), "t")
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 200, ae.StatusCode)
			require.Contains(t, ae.Message, "unexpected data")
		})
	}
}

func TestGetAlephTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture string
		want    Task
	}{
		{fixture: "aleph_running.json", want: Task{ID: "aleph-1", State: StateGenerating, Aleph: true}},
		{
			fixture: "aleph_success.json",
			want: Task{
				ID: "aleph-1", State: StateSuccess, VideoURL: "https://file.com/k/xxxxxxx.mp4",
				ImageURL: "https://file.com/m/xxxxxxxx.png", GeneratedAt: time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC), Aleph: true,
			},
		},
		{
			fixture: "aleph_failed.json",
			want: Task{
				ID: "aleph-1", State: StateFail, FailMessage: "Failed to fetch the image",
				GeneratedAt: time.Date(2023, 8, 15, 14, 31, 0, 0, time.UTC), Aleph: true,
			},
		},
		{
			fixture: "aleph_failed_text_code.json",
			want: Task{
				ID: "aleph-fail-text", State: StateFail, FailCodeText: "E_NSFW", FailMessage: "Your video creation prompt contains NSFW content",
				GeneratedAt: time.Date(2023, 8, 15, 14, 30, 45, 0, time.UTC), Aleph: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, replyFixture(t, tt.fixture))
			got, err := c.GetAlephTask(t.Context(), "aleph-1")
			require.NoError(t, err)
			var raw struct {
				ParamJSON string `json:"paramJson"`
			}
			require.NoError(t, json.Unmarshal(got.Raw, &raw))
			require.True(t, json.Valid([]byte(raw.ParamJSON)), "paramJson is kept raw in Task.Raw")
			got.Raw = nil
			require.Equal(t, []string{testKey}, got.secrets, "the client's key rides along for Result().Err()")
			got.secrets = nil
			require.Equal(t, tt.want, *got)

			reqs := f.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, "/api/v1/aleph/record-info", reqs[0].Path)
			require.Equal(t, "taskId=aleph-1", reqs[0].RawQuery)
		})
	}
}

func TestAlephFailedTaskResult(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, replyFixture(t, "aleph_failed.json"))
	task, err := c.GetAlephTask(t.Context(), "aleph-1")
	require.NoError(t, err)
	res := task.Result()
	require.Equal(t, 400, res.Code, "a failure without errorCode still reads as a failure")
	require.ErrorIs(t, res.Err(), ErrInput)
	require.ErrorIs(t, res.Err(), ErrTaskFailed)
}

func TestCredits(t *testing.T) {
	t.Parallel()
	for _, data := range []string{`100`, `"100"`} {
		t.Run(data, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"code":200,"msg":"success","data":`+data+`}`)
			})
			n, err := c.Credits(t.Context())
			require.NoError(t, err)
			require.Equal(t, 100, n)
			reqs := f.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, http.MethodGet, reqs[0].Method)
			require.Equal(t, "/api/v1/chat/credit", reqs[0].Path)
		})
	}
}

func TestDownloadURL(t *testing.T) {
	t.Parallel()
	const direct = "https://tempfile.example.com/abc?sig=SIGNED-QUERY"
	c, f := setup(t, func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, 200, "success", direct) })
	got, err := c.DownloadURL(t.Context(), "https://tempfile.1f6c.example/file.mp4")
	require.NoError(t, err)
	require.Equal(t, direct, got)
	reqs := f.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, http.MethodPost, reqs[0].Method)
	require.Equal(t, "/api/v1/common/download-url", reqs[0].Path)
	require.JSONEq(t, `{"url":"https://tempfile.1f6c.example/file.mp4"}`, string(reqs[0].Body))

	_, err = c.DownloadURL(t.Context(), "file:///etc/passwd")
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "fileURL", ve.Field)
	require.Equal(t, 1, f.count())
}

func TestDownloadURLRejectsNonURLData(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, 200, "success", "javascript:alert(1)") })
	_, err := c.DownloadURL(t.Context(), "https://tempfile.example/file.mp4")
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Contains(t, ae.Message, "unexpected data")
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	c, f := setup(t, replyTaskID("t-1"))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := c.Generate(context.Background(), GenerateRequest{Prompt: fmt.Sprint("p", i), Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio1x1})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, 16, f.count())
}

// TestAPIKeyNeverLeaks drives every error path that carries server text or transport
// detail, with a debug-level JSON logger, and searches errors and logs for the key.
func TestAPIKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testAPIKeyNeverLeaks)
}

func testAPIKeyNeverLeaks(t *testing.T) {
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logBuf, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	echo := func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/api/v1/chat/credit":
			reply(w, http.StatusServiceUnavailable, 500, "bad key "+auth, map[string]string{"echo": auth})
		case "/api/v1/runway/record-detail":
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "<html>proxy error for "+auth+"</html>")
		default:
			reply(w, http.StatusUnauthorized, 401, "You do not have access permissions: "+auth, nil)
		}
	}
	c, _ := setup(t, echo, WithLogger(logger), WithMaxRetries(2))
	var errs []error
	_, err := c.Credits(t.Context())
	errs = append(errs, err)
	_, err = c.GetTask(t.Context(), "task-1")
	errs = append(errs, err)
	_, err = c.Generate(t.Context(), GenerateRequest{Prompt: "p", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio1x1})
	errs = append(errs, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Credits(ctx)
	errs = append(errs, err)

	for _, err := range errs {
		require.Error(t, err)
		require.NotContains(t, err.Error(), testKey)
		require.NotContains(t, fmt.Sprintf("%+v", err), testKey)
		var ae *APIError
		if errors.As(err, &ae) {
			require.NotContains(t, string(ae.Body), testKey)
			require.NotContains(t, ae.Message, testKey)
		}
	}
	logMu.Lock()
	logs := logBuf.String()
	logMu.Unlock()
	require.Contains(t, logs, "retrying", "the retries were logged")
	require.NotContains(t, logs, testKey)
}

// lockedWriter serialises writes to a buffer shared with the test goroutine.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRetryIsLoggedAtDebug(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testRetryIsLoggedAtDebug)
}

func testRetryIsLoggedAtDebug(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var n int
	c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			reply(w, http.StatusServiceUnavailable, 503, "busy", nil)
			return
		}
		reply(w, 200, 200, "success", 7)
	}, WithLogger(logger))
	_, err := c.Credits(t.Context())
	require.NoError(t, err)

	mu.Lock()
	line := strings.TrimSpace(buf.String())
	mu.Unlock()
	var entry map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &entry), "exactly one retry line: %s", line)
	require.Equal(t, "DEBUG", entry["level"])
	require.Equal(t, "GET", entry["method"])
	require.Equal(t, "/api/v1/chat/credit", entry["path"])
	require.EqualValues(t, 1, entry["attempt"])
	require.EqualValues(t, time.Second, entry["wait"])
}

func TestFailedCallKeepsPooledConnections(t *testing.T) {
	t.Parallel()
	srv, newConns := newConnCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/chat/credit" {
			reply(w, 200, 200, "success", 1)
			return
		}
		reply(w, 401, 401, "You do not have access permissions", nil)
	}))
	c, err := NewClient(testKey, WithBaseURL(srv.URL))
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)

	_, err = c.Credits(t.Context())
	require.NoError(t, err)
	_, err = c.GetTask(t.Context(), "t")
	require.ErrorIs(t, err, ErrUnauthorized)
	_, err = c.Credits(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, newConns(), "a failed call must not close the pool's idle connections")
}

func BenchmarkGenerate(b *testing.B) {
	srv := httptest.NewServer(replyTaskID("task-bench"))
	b.Cleanup(srv.Close)
	c, err := NewClient(testKey, WithBaseURL(srv.URL), WithSubmitRateLimit(0, 0))
	require.NoError(b, err)
	b.Cleanup(c.hc.CloseIdleConnections)
	req := GenerateRequest{Prompt: "a cat surfing", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Generate(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	msg := documentedFailures[len(documentedFailures)/2].msg
	b.ReportAllocs()
	for b.Loop() {
		_ = Classify(400, msg)
	}
}
