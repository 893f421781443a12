package runway

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Tests of the two paths through CallbackHandler.ServeHTTP over real servers on loopback: the
// work on the request's goroutine under net/http over HTTP/1.x, on a goroutine of its own
// otherwise (see answersEarly). The flow tests in callback_flow_test.go run both paths on
// fake time (serveModes).

// plainWriter is a ResponseWriter that can neither flush nor be unwrapped: embedding the
// interface passes on its three methods only.
type plainWriter struct{ http.ResponseWriter }

// unwrapWriter hides Flush but hands the writer it wraps to http.ResponseController.
type unwrapWriter struct{ plainWriter }

func (u unwrapWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// flushWriter passes everything through, Flush included.
type flushWriter struct{ plainWriter }

func (f flushWriter) Flush() { http.NewResponseController(f.ResponseWriter).Flush() }

// TestAnswersEarly: only net/http's own HTTP/1.x writer, bare or inside the observer's, lets
// the work run on the request's goroutine; every other writer, even one that passes Flush
// through or unwraps to net/http's, and HTTP/2 keep the goroutine.
func TestAnswersEarly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	type got struct {
		name string
		ok   bool
	}
	results := make(chan []got, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results <- []got{
			{"net/http's writer", answersEarly(w, r)},
			{"the observer's writer around it", answersEarly(&callbackWriter{ResponseWriter: w}, r)},
			{"a writer that unwraps to it", answersEarly(unwrapWriter{plainWriter{w}}, r)},
			{"a writer that passes Flush through", answersEarly(flushWriter{plainWriter{w}}, r)},
			{"a writer that can neither", answersEarly(plainWriter{w}, r)},
			{"a recorder", answersEarly(httptest.NewRecorder(), r)},
		}
	})
	for _, h2 := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(handler)
		if h2 {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		resp, err := srv.Client().Get(srv.URL)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		for i, g := range <-results {
			assert.Equal(t, !h2 && i < 2, g.ok, "%s (HTTP/2 %v)", g.name, h2)
		}
		srv.Client().CloseIdleConnections()
		srv.Close()
	}
}

// doneSignal is a Deduper that reports each Done and Release on a channel: the delivery's
// processing is over.
type doneSignal struct {
	Deduper
	over chan string
}

func (d *doneSignal) Done(ctx context.Context, key, token string) error {
	err := d.Deduper.Done(ctx, key, token)
	d.over <- "done"
	return err
}

func (d *doneSignal) Release(ctx context.Context, key, token string) error {
	err := d.Deduper.Release(ctx, key, token)
	d.over <- "release"
	return err
}

// overBudgetServer serves a handler whose result func blocks until release is closed, with a
// 50 ms budget, wrapped by wrap (nil: none), over HTTP/1.1 or HTTP/2.
type overBudgetServer struct {
	srv     *httptest.Server
	h       *CallbackHandler
	calls   chan struct{} // one value per call of the func
	release chan struct{}
	over    chan string   // the deduper's Done or Release: the processing is over
	closed  chan struct{} // closed when the server closes its first connection
}

func newOverBudgetServer(t *testing.T, h2 bool, wrap func(http.Handler) http.Handler, opts ...CallbackOption) *overBudgetServer {
	t.Helper()
	s := &overBudgetServer{calls: make(chan struct{}, 10), release: make(chan struct{}), over: make(chan string, 10),
		closed: make(chan struct{})}
	opts = append([]CallbackOption{
		WithResultTimeout(50 * time.Millisecond),
		WithDeduper(&doneSignal{Deduper: NewMemoryDeduper(0), over: s.over}),
		WithResultFunc(func(context.Context, *Result) error {
			s.calls <- struct{}{}
			<-s.release
			return nil
		}),
	}, opts...)
	s.h = NewCallbackHandler(opts...)
	var handler http.Handler = s.h
	if wrap != nil {
		handler = wrap(s.h)
	}
	s.srv = httptest.NewUnstartedServer(handler)
	var once sync.Once
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			once.Do(func() { close(s.closed) })
		}
	}
	if h2 {
		s.srv.EnableHTTP2 = true
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	return s
}

// post delivers body and returns the whole answer.
func (s *overBudgetServer) post(t *testing.T, body string) (*http.Response, string) {
	t.Helper()
	resp, err := s.srv.Client().Post(s.srv.URL, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, string(b)
}

// TestCallbackOverBudgetOverRealServer: whatever the path, a client of a real server gets the
// whole 503 (Retry-After, body) at the budget while the func still runs; a retry meanwhile
// does not run it again; once it is over, a retry gets 200. Over HTTP/1.1 the work runs on the
// request's goroutine, so the early answer closes the connection behind it.
func TestCallbackOverBudgetOverRealServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	bufferAll := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(plainWriter{rec}, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	withTimeout := func(next http.Handler) http.Handler { return http.TimeoutHandler(next, time.Hour, "timeout") }
	// Middlewares that hold the answer back while offering Flush or Unwrap: writing and
	// flushing the 503 early through them would send a 200, or no body end, at the budget.
	holdBack := func(wrap func(w http.ResponseWriter, buf *bufferedWriter) http.ResponseWriter) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				buf := &bufferedWriter{header: make(http.Header)}
				next.ServeHTTP(wrap(w, buf), r)
				buf.copyTo(w)
			})
		}
	}
	bufferUnwrap := holdBack(func(w http.ResponseWriter, buf *bufferedWriter) http.ResponseWriter {
		return &bufferUnwrapWriter{bufferedWriter: buf, inner: w}
	})
	bufferFlush := holdBack(func(w http.ResponseWriter, buf *bufferedWriter) http.ResponseWriter {
		return &bufferFlushWriter{bufferedWriter: buf, inner: w}
	})
	tests := []struct {
		name      string
		h2        bool
		wrap      func(http.Handler) http.Handler
		wantClose bool
	}{
		{name: "http1", wantClose: true},
		{name: "http2", h2: true},
		{name: "http1 behind a buffering middleware", wrap: bufferAll},
		{name: "http1 behind http.TimeoutHandler", wrap: withTimeout},
		{name: "http1 behind a buffering middleware that unwraps", wrap: bufferUnwrap},
		{name: "http1 behind a buffering middleware that passes Flush on", wrap: bufferFlush},
		{name: "http1 behind a gzip middleware", wrap: gzipMiddleware},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newOverBudgetServer(t, tc.h2, tc.wrap)
			defer s.srv.Close()
			defer s.srv.Client().CloseIdleConnections()
			body := runwayBody(testID, 200, "ok")

			resp, text := s.post(t, body)
			<-s.calls // the func was called, and has not returned: release is open
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, retryAfterSeconds, resp.Header.Get("Retry-After"))
			assert.Equal(t, "service unavailable\n", text)
			assert.Equal(t, tc.wantClose, resp.Close, "connection closed after the early answer")

			// Kie's retry while the func runs: busy, no second call.
			resp, _ = s.post(t, body)
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

			close(s.release)
			require.Equal(t, "done", <-s.over)
			resp, text = s.post(t, body)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "ok\n", text)
			assert.Len(t, s.calls, 0, "the func ran once")
		})
	}
}

// TestCallbackInTimeOverRealServer: over HTTP/1.1 a delivery processed within its budget is
// answered on a connection that stays open: the next delivery reuses it.
func TestCallbackInTimeOverRealServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var rc recorder
	h := NewCallbackHandler(WithResultFunc(rc.resultFunc()))
	srv, newConns := newConnCountingServer(t, h)
	defer srv.Close()
	hc := srv.Client()
	defer hc.CloseIdleConnections()
	for i := range 3 {
		id := strings.Replace(testID, "a6d1c717eba6", "a6d1c717eba"+string(rune('0'+i)), 1)
		resp, err := hc.Post(srv.URL, "application/json", strings.NewReader(runwayBody(id, 200, "ok")))
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "ok\n", string(b))
		assert.False(t, resp.Close)
	}
	assert.Equal(t, 1, newConns(), "one connection for the three deliveries")
	assert.EqualValues(t, 3, rc.calls.Load())
}

// TestObserverOverBudgetOverRealServer: on the request's goroutine, an over-budget delivery is
// reported as the goroutine path reports it: OnCallback once, at the budget, with 503 and the
// processing running; OnResult when the func is over; and no second OnCallback when
// ServeHTTP returns.
func TestObserverOverBudgetOverRealServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var mu sync.Mutex
	var callbacks []CallbackEvent
	firstCallback := make(chan struct{})
	results := make(chan ResultEvent, 2)
	o := Observer{
		OnCallback: func(e CallbackEvent) {
			mu.Lock()
			defer mu.Unlock()
			callbacks = append(callbacks, e)
			if len(callbacks) == 1 {
				close(firstCallback)
			}
		},
		OnResult: func(e ResultEvent) { results <- e },
	}
	s := newOverBudgetServer(t, false, nil, WithCallbackObserver(o))
	defer s.srv.Close()

	resp, _ := s.post(t, runwayBody(testID, 200, "ok"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	<-s.calls
	<-firstCallback
	mu.Lock()
	ev := callbacks[0]
	mu.Unlock()
	assert.Equal(t, http.StatusServiceUnavailable, ev.Status)
	assert.Equal(t, CallbackUnavailable, ev.Reason)
	assert.Equal(t, ProcessRunning, ev.Processed)
	assert.Equal(t, testID, ev.TaskID)
	assert.Len(t, results, 0, "no result before the func is over")

	close(s.release)
	e := <-results
	assert.Equal(t, testID, e.TaskID)
	assert.Equal(t, SourceCallback, e.Source)
	<-s.closed // the only connection: closed once the handler has returned
	mu.Lock()
	assert.Len(t, callbacks, 1, "one OnCallback per request")
	mu.Unlock()
	assert.Len(t, results, 0, "one OnResult")
}

// TestCallbackEarlyAnswerOverTLS: over HTTP/1.1 with TLS (HTTP/2 not offered), the early
// answer is flushed through the TLS connection too.
func TestCallbackEarlyAnswerOverTLS(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newOverBudgetServer(t, false, nil)
	s.srv.Close()
	s.srv = httptest.NewUnstartedServer(s.h)
	s.srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	s.srv.StartTLS()
	defer s.srv.Close()
	resp, _ := s.post(t, runwayBody(testID, 200, "ok"))
	<-s.calls
	assert.Equal(t, "HTTP/1.1", resp.Proto)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.True(t, resp.Close)
	close(s.release)
	require.Equal(t, "done", <-s.over)
}

// bufferedWriter keeps the answer until copyTo sends it.
type bufferedWriter struct {
	header http.Header
	status int
	body   []byte
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	b.body = append(b.body, p...)
	return len(p), nil
}
func (b *bufferedWriter) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body)
}

// bufferUnwrapWriter buffers, and unwraps to the writer it will copy to.
type bufferUnwrapWriter struct {
	*bufferedWriter
	inner http.ResponseWriter
}

func (b *bufferUnwrapWriter) Unwrap() http.ResponseWriter { return b.inner }

// bufferFlushWriter buffers, and flushes the writer it will copy to (not its buffer).
type bufferFlushWriter struct {
	*bufferedWriter
	inner http.ResponseWriter
}

func (b *bufferFlushWriter) Flush() { http.NewResponseController(b.inner).Flush() }

// gzipMiddleware compresses every answer into a chunked body (the length is dropped), as
// common gzip middlewares do; Flush flushes the compressor and the writer below.
func gzipMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		defer zw.Close()
		next.ServeHTTP(&gzipWriter{ResponseWriter: w, zw: zw}, r)
	})
}

type gzipWriter struct {
	http.ResponseWriter
	zw *gzip.Writer
}

func (g *gzipWriter) WriteHeader(s int) {
	g.Header().Del("Content-Length")
	g.ResponseWriter.WriteHeader(s)
}
func (g *gzipWriter) Write(p []byte) (int, error) { return g.zw.Write(p) }
func (g *gzipWriter) Flush() {
	_ = g.zw.Flush()
	http.NewResponseController(g.ResponseWriter).Flush()
}
