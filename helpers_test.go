package runway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Test helpers shared by the package's tests: the HMAC keys, task id and clock the callback
// fixtures are signed with, a settable clock, the client builders and callback helpers. The
// API key (testKey) and the fake API (setup) live in client_test.go, the scripted poll API
// (newPollClient) in pollfake_test.go.

// Test HMAC keys, a task id and the time the fixtures are signed at (the timestamp of Kie's
// example callback).
const (
	testKey1  = "kie-test-hmac-key-1"
	testKey2  = "kie-test-hmac-key-2"
	testID    = "ee603959-debb-48d1-98c4-a6d1c717eba6"
	testNowTS = "1769670760"
)

var testNow = time.Unix(1769670760, 0)

func fixedClock() time.Time { return testNow }

// runwayBody is a Runway-shaped callback for id with the given code and msg.
func runwayBody(id string, code int, msg string) string {
	return `{"code":` + strconv.Itoa(code) + `,"msg":"` + msg + `","data":{"task_id":"` + id +
		`","video_id":"v1","video_url":"https://file.com/k/1.mp4","image_url":"https://file.com/m/1.png"}}`
}

// sign returns the signature of id at timestamp ts with key, computed by the code under test
// (TestSignatureKnownAnswer pins it to an independent computation).
func sign(key, id, ts string) map[string]string {
	_, sig := SignCallback(key, id, mustUnix(ts))
	return map[string]string{HeaderWebhookTimestamp: ts, HeaderWebhookSignature: sig}
}

func mustUnix(ts string) time.Time {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		panic(err)
	}
	return time.Unix(n, 0)
}

// newCallbackRequest builds a POST with a JSON content type and the given extra headers
// (an empty value deletes a header).
func newCallbackRequest(body string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/kie/callback", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		if v == "" {
			r.Header.Del(k)
			continue
		}
		r.Header.Set(k, v)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// A serveMode delivers a callback request to a handler the way one kind of caller does and
// returns the answer as soon as that caller would have it.
type serveMode struct {
	name  string
	serve func(h http.Handler, r *http.Request) *httptest.ResponseRecorder
}

// serveModes are the two paths through CallbackHandler.ServeHTTP (see answersEarly):
//   - direct: ServeHTTP called as a test or a buffering middleware calls it; the answer is
//     what was written when it returns, and the work runs on a goroutine of its own;
//   - http1: as net/http's HTTP/1.x server serves it (a writer that sends what is flushed,
//     marked sendsFlushed); the work runs on the request's goroutine, and an answer counts
//     as given once it is flushed, even while ServeHTTP goes on (serveHTTP1).
var serveModes = []serveMode{{name: "direct", serve: serve}, {name: "http1", serve: serveHTTP1}}

// serveHTTP1 runs ServeHTTP on a goroutine with a writer that stands for net/http's HTTP/1.x
// one, and returns the answer when it is flushed or when ServeHTTP returns, whichever is
// first. A ServeHTTP still running (the work past its budget) goes on and ends with the work.
// A panic out of ServeHTTP is recovered, as net/http does.
func serveHTTP1(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w, returned := serveHTTP1Writer(h, r)
	select {
	case <-w.flushed:
	case <-returned:
	}
	return w.ResponseRecorder
}

// serveHTTP1Writer starts serveHTTP1's ServeHTTP and returns its writer and a channel closed
// when ServeHTTP has returned.
func serveHTTP1Writer(h http.Handler, r *http.Request) (*flushNotifier, <-chan struct{}) {
	w := &flushNotifier{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan struct{})}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		defer func() {
			w.mu.Lock()
			w.returned, w.panicked = true, recover() != nil
			w.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	}()
	return w, returned
}

// flushNotifier is a recorder that closes flushed on its first Flush and counts the writes
// made after ServeHTTP returned (there must be none). Like net/http's HTTP/1.x writer, it
// sends what is flushed at once (sendsFlushed).
type flushNotifier struct {
	*httptest.ResponseRecorder
	once    sync.Once
	flushed chan struct{}

	mu         sync.Mutex
	returned   bool // ServeHTTP returned
	panicked   bool // with a panic
	lateWrites int  // WriteHeader, Write or Flush calls after it returned
}

func (f *flushNotifier) late() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.returned {
		f.lateWrites++
	}
}

func (f *flushNotifier) WriteHeader(status int) { f.late(); f.ResponseRecorder.WriteHeader(status) }

func (f *flushNotifier) Write(b []byte) (int, error) { f.late(); return f.ResponseRecorder.Write(b) }

func (f *flushNotifier) Flush() {
	f.late()
	f.ResponseRecorder.Flush()
	f.once.Do(func() { close(f.flushed) })
}

func (f *flushNotifier) sendsFlushed() {}

// logBuffer collects a handler's log output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recorder is a result func that counts its calls and keeps the last result.
type recorder struct {
	calls atomic.Int32
	mu    sync.Mutex
	last  *Result
	then  func(ctx context.Context, r *Result) error // optional behaviour after recording
}

func (rc *recorder) resultFunc() func(ctx context.Context, r *Result) error {
	return func(ctx context.Context, r *Result) error {
		rc.calls.Add(1)
		rc.mu.Lock()
		rc.last = r
		rc.mu.Unlock()
		if rc.then != nil {
			return rc.then(ctx, r)
		}
		return nil
	}
}

func (rc *recorder) result() *Result {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last
}

// countingReader yields n bytes of 'a' and counts what was read.
type countingReader struct {
	left int64
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	for i := range p {
		p[i] = 'a'
	}
	c.left -= int64(len(p))
	c.read.Add(int64(len(p)))
	return len(p), nil
}

func requireGenericBody(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, strings.ToLower(http.StatusText(rec.Code))+"\n", rec.Body.String())
}

// fakeClock is a settable clock, for code that reads the time but does not wait on it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestClient returns a client with the test API key and opts; it is closed, and its idle
// connections with it, when the test ends.
func newTestClient(tb testing.TB, opts ...Option) *Client {
	tb.Helper()
	c, err := NewClient(testKey, opts...)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_ = c.Close()
		c.hc.CloseIdleConnections()
	})
	return c
}

// newOfflineClient is a client whose API is never called (its base URL is a closed port on
// loopback) and whose submissions are not rate limited; its handlers wake its waiters.
func newOfflineClient(tb testing.TB, opts ...Option) *Client {
	tb.Helper()
	return newTestClient(tb, append([]Option{WithBaseURL("http://127.0.0.1:9"), WithSubmitRateLimit(0, 0)}, opts...)...)
}

// recordedSleeps keeps the client's log (captureHandler) to read back the waits it logs
// before each download retry. Downloads that retry run inside a synctest bubble, where the
// waits themselves take no real time.
type recordedSleeps struct{ captureHandler }

func (s *recordedSleeps) all() []time.Duration {
	var out []time.Duration
	for _, r := range s.find("runway: retrying download") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "wait" {
				out = append(out, a.Value.Duration())
			}
			return true
		})
	}
	return out
}

// newDownloadClient returns a client on apiURL (may be "") whose download retry waits are
// recorded, dialling the tests' in-memory file hosts; extra options come last.
func newDownloadClient(t *testing.T, apiURL string, extra ...Option) (*Client, *recordedSleeps) {
	t.Helper()
	s := &recordedSleeps{}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialPipeHost}}
	opts := []Option{WithRetryBackoff(time.Second, 30*time.Second), WithHTTPClient(hc), WithLogger(s.logger())}
	if apiURL != "" {
		opts = append(opts, WithBaseURL(apiURL))
	}
	return newTestClient(t, append(opts, extra...)...), s
}

// Len returns the number of results b currently keeps (tests only).
func (b *MemoryResultBus) Len() int {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.evictExpiredLocked(now)
	return len(b.results)
}

// newConnCountingServer starts an httptest server running h; newConns returns how many
// connections it accepted since the previous call.
func newConnCountingServer(t *testing.T, h http.Handler) (srv *httptest.Server, newConns func() int) {
	t.Helper()
	var mu sync.Mutex
	conns := 0
	srv = httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, func() int {
		mu.Lock()
		defer mu.Unlock()
		n := conns
		conns = 0
		return n
	}
}
