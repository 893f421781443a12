package runwaytest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a fake server closed at the end of the test.
func start(t *testing.T, opts ...runwaytest.Option) *runwaytest.Server {
	t.Helper()
	srv := runwaytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// client returns a real runway client pointed at srv with millisecond backoff and without
// the client-side submission limiter, so the fake's own limits and faults are what it meets.
func client(t *testing.T, srv *runwaytest.Server, opts ...runway.Option) *runway.Client {
	t.Helper()
	opts = append([]runway.Option{
		runway.WithBaseURL(srv.URL),
		runway.WithRetryBackoff(time.Millisecond, 5*time.Millisecond),
		runway.WithSubmitRateLimit(0, 0),
	}, opts...)
	c, err := runway.NewClient(srv.APIKey, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctx is a test context with a generous bound, so a broken wait fails instead of hanging. It
// is a hang guard, not a timing assertion: a 10 s bound was hit once on a 2-core machine
// running several race-enabled test binaries, so it leaves room for a loaded CI machine.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// received is one callback seen by a receiver.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a plain net/http callback endpoint that records every POST and answers with
// the status its reply func picks for the n-th request (0-based).
type receiver struct {
	URL   string
	got   chan received
	mu    sync.Mutex
	n     int
	reply func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, reply func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan received, 4096), reply: reply}
	if rc.reply == nil {
		rc.reply = func(int, *http.Request) int { return http.StatusOK }
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		rc.mu.Lock()
		n := rc.n
		rc.n++
		rc.mu.Unlock()
		select {
		case rc.got <- received{Header: r.Header.Clone(), Body: body}:
		case <-r.Context().Done(): // the sender gave up (timeout or Close)
			return
		}
		w.WriteHeader(rc.reply(n, r))
	}))
	t.Cleanup(ts.Close)
	rc.URL = ts.URL + "/kie/callback"
	return rc
}

// next returns the next callback received.
func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-ctx(t).Done():
		t.Fatal("no callback received")
		return received{}
	}
}

// decode unmarshals a JSON object into a generic map.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func genReq(callback string) runway.GenerateRequest {
	return runway.GenerateRequest{
		Prompt:      "a cat surfing a wave",
		Duration:    5,
		Quality:     runway.Quality720p,
		AspectRatio: runway.AspectRatio16x9,
		CallBackURL: callback,
	}
}

// newBenchReceiver is a callback endpoint answering 200 to everything.
func newBenchReceiver(b *testing.B) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(ts.Close)
	return ts.URL
}

func benchClient(b *testing.B, srv *runwaytest.Server) *runway.Client {
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithSubmitRateLimit(0, 0))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// kindSentinel is the class sentinel a *TaskError of each kind matches.
var kindSentinel = map[runway.ErrorKind]error{
	runway.KindModeration:  runway.ErrModeration,
	runway.KindFormat:      runway.ErrFormat,
	runway.KindQuota:       runway.ErrQuota,
	runway.KindConcurrency: runway.ErrConcurrency,
	runway.KindSize:        runway.ErrSize,
	runway.KindInput:       runway.ErrInput,
	runway.KindTransient:   runway.ErrTransient,
	runway.KindServer:      runway.ErrServer,
	runway.KindUnknown:     runway.ErrUnknownFailure,
}
