package runway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestClientCallbackHandlerWakesWaiters: a result accepted by Client.CallbackHandler reaches a
// registered waiter at once and stays on the bus for a waiter that comes later; a duplicate
// publishes nothing new.
func TestClientCallbackHandlerWakesWaiters(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newTestClient(t)
		var rc recorder
		h := c.CallbackHandler(WithResultFunc(rc.resultFunc()))
		w := c.hub.register(testID)
		defer c.hub.unregister(testID, w)

		body := runwayBody(testID, 400, "Reached the limit for concurrent generations.")
		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(body, nil)).Code)

		select {
		case got := <-w.ch:
			require.Equal(t, testID, got.TaskID)
			require.Equal(t, SourceCallback, got.Source)
			require.ErrorIs(t, got.Err(), ErrConcurrency)
		default:
			t.Fatal("the waiter was not woken by the callback")
		}
		kept, err := c.bus.Lookup(context.Background(), testID)
		require.NoError(t, err)
		require.NotNil(t, kept, "a later WaitForResult finds the result on the bus")
		require.Equal(t, 400, kept.Code)
		require.EqualValues(t, 1, rc.calls.Load())
	})
}

// failingBus is a ResultBus whose Publish fails until fixed.
type failingBus struct {
	*MemoryResultBus
	failing   atomic.Bool
	publishes atomic.Int32
}

func (b *failingBus) Publish(ctx context.Context, r *Result) error {
	b.publishes.Add(1)
	if b.failing.Load() {
		return errors.New("bus unavailable")
	}
	return b.MemoryResultBus.Publish(ctx, r)
}

// TestClientCallbackHandlerPublishFailure: a result that cannot be published answers 500
// without running the func and is released, so the retry publishes and runs it.
func TestClientCallbackHandlerPublishFailure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		bus := &failingBus{MemoryResultBus: NewMemoryResultBus(0, 0)}
		bus.failing.Store(true)
		c := newTestClient(t, WithResultBus(bus))
		var rc recorder
		var logs logBuffer
		h := c.CallbackHandler(WithResultFunc(rc.resultFunc()), WithCallbackLogger(logs.logger()))
		body := runwayBody(testID, 200, "ok")

		require.Equal(t, http.StatusInternalServerError, serve(h, newCallbackRequest(body, nil)).Code)
		require.Zero(t, rc.calls.Load())
		require.Contains(t, logs.String(), "publish")

		bus.failing.Store(false)
		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(body, nil)).Code)
		require.EqualValues(t, 1, rc.calls.Load())
		require.EqualValues(t, 2, bus.publishes.Load())
	})
}

// TestClientCallbackHandlerUsesClientLogger: without WithCallbackLogger the client's logger
// gets the handler's records.
func TestClientCallbackHandlerUsesClientLogger(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		c := newTestClient(t, WithLogger(logs.logger()))
		h := c.CallbackHandler()
		require.Equal(t, http.StatusBadRequest, serve(h, newCallbackRequest("{}", nil)).Code)
		require.Contains(t, logs.String(), "callback rejected")
		require.NotContains(t, logs.String(), testKey)
	})
}

// fakeDetails serves the two details endpoints with scripted data objects and counts calls.
type fakeDetails struct {
	t      *testing.T
	mu     sync.Mutex
	runway map[string]string // task id -> data JSON
	aleph  map[string]string
	calls  map[string]int // path -> calls
}

func (f *fakeDetails) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[r.URL.Path]++
	assert.Equal(f.t, "Bearer "+testKey, r.Header.Get("Authorization"))
	id := r.URL.Query().Get("taskId")
	var data string
	var ok bool
	switch r.URL.Path {
	case "/api/v1/runway/record-detail":
		data, ok = f.runway[id]
	case "/api/v1/aleph/record-info":
		data, ok = f.aleph[id]
	}
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		_, _ = w.Write([]byte(`{"code":404,"msg":"task not found","data":null}`))
		return
	}
	_, _ = w.Write([]byte(`{"code":200,"msg":"success","data":` + data + `}`))
}

func (f *fakeDetails) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

// TestCallbackRefetch is CB-14: the signature does not cover the body, so WithRefetch delivers
// what the API says. A forged body is replaced by the API's answer; a task the API reports as
// unfinished gets 503 and is released; the Aleph shape, and Aleph tasks this client submitted,
// are fetched from the Aleph endpoint; duplicates cost no API call.
func TestCallbackRefetch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	api := &fakeDetails{
		t:     t,
		calls: map[string]int{},
		runway: map[string]string{
			"r-ok":      `{"taskId":"r-ok","state":"success","videoInfo":{"videoId":"v9","videoUrl":"https://api/real.mp4","imageUrl":"https://api/real.png"}}`,
			"r-running": `{"taskId":"r-running","state":"generating"}`,
			"r-liar":    `{"taskId":"someone-else","state":"success"}`,
			"a-sub":     `{"taskId":"a-sub","state":"success"}`,
		},
		aleph: map[string]string{
			"a-ok":  `{"taskId":"a-ok","successFlag":1,"response":{"resultVideoUrl":"https://api/aleph.mp4","resultImageUrl":"https://api/aleph.png"}}`,
			"a-sub": `{"taskId":"a-sub","successFlag":0,"errorCode":400,"errorMessage":"Your prompt was caught by our AI moderator."}`,
		},
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := newTestClient(t, WithBaseURL(srv.URL), WithHTTPClient(srv.Client()), WithMaxRetries(0))
	c.aleph.put("a-sub", struct{}{})

	var rc recorder
	h := c.CallbackHandler(WithRefetch(), WithResultFunc(rc.resultFunc()), WithHMACKey(testKey1), WithClock(fixedClock))
	post := func(id, body string) int {
		return serve(h, newCallbackRequest(body, sign(testKey1, id, testNowTS))).Code
	}

	// A forged failure body for a task that succeeded: the API's success is delivered.
	require.Equal(t, http.StatusOK, post("r-ok", runwayBody("r-ok", 400, "Inappropriate content detected.")))
	got := rc.result()
	require.NoError(t, got.Err())
	require.Equal(t, "https://api/real.mp4", got.VideoURL)
	require.Equal(t, "v9", got.VideoID)
	require.Equal(t, SourceCallback, got.Source)
	require.Equal(t, http.StatusOK, post("r-ok", runwayBody("r-ok", 200, "ok")))
	require.Equal(t, 1, api.count("/api/v1/runway/record-detail"), "a duplicate costs no API call")

	// Unfinished, unknown or mismatched answers: 5xx, func not called.
	before := rc.calls.Load()
	require.Equal(t, http.StatusServiceUnavailable, post("r-running", runwayBody("r-running", 200, "ok")))
	require.Equal(t, http.StatusInternalServerError, post("r-missing", runwayBody("r-missing", 200, "ok")))
	require.Equal(t, http.StatusInternalServerError, post("r-liar", runwayBody("r-liar", 200, "ok")))
	require.Equal(t, before, rc.calls.Load())

	// Released: once the API reports the task finished, the retry is processed.
	api.mu.Lock()
	api.runway["r-running"] = `{"taskId":"r-running","state":"fail","failCode":400,"failMsg":"Incorrect image format."}`
	api.mu.Unlock()
	require.Equal(t, http.StatusOK, post("r-running", runwayBody("r-running", 200, "ok")))
	require.ErrorIs(t, rc.result().Err(), ErrFormat)

	// Aleph: by body shape, and by the client's memory of GenerateAleph ids.
	require.Equal(t, http.StatusOK, post("a-ok", `{"code":200,"msg":"success","data":{"result_video_url":"https://forged"},"taskId":"a-ok"}`))
	require.Equal(t, "https://api/aleph.mp4", rc.result().VideoURL)
	require.Equal(t, http.StatusOK, post("a-sub", runwayBody("a-sub", 200, "ok")))
	require.ErrorIs(t, rc.result().Err(), ErrModeration)
	require.Equal(t, 2, api.count("/api/v1/aleph/record-info"))
}
