package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// BenchmarkCallbackHandlersNetHTTP serves the same deliveries as BenchmarkCallbackHandlers to
// the same four handlers, each mounted in a net/http Server as a service mounts it, over one
// in-memory HTTP/1.1 keep-alive connection (net.Pipe: no kernel, no sockets). One goroutine
// writes the requests, pipelined, and the benchmark reads the answers, so each op is one
// request parsed by net/http, handled, and its answer written and read back. Every handler
// pays the same net/http and connection cost; what differs is the handler. It is the figure
// closest to production for the SDK, whose handler takes a path of its own under net/http
// over HTTP/1.x (the delivery processed on the request's goroutine) that a direct ServeHTTP
// call with another writer cannot take.
func BenchmarkCallbackHandlersNetHTTP(b *testing.B) {
	quietSDKLogs()
	for _, bc := range handlerCases {
		b.Run(bc.name, func(b *testing.B) { runNetHTTP(b, bc.scheme, bc.build) })
	}
}

// pipeListener hands out the server ends of in-memory connections made by dial.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial makes a connection and hands its server end to Accept.
func (l *pipeListener) dial() (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// netHTTPTarget is a handler served by net/http on one in-memory connection.
type netHTTPTarget struct {
	srv    *http.Server
	ln     *pipeListener
	conn   net.Conn
	answer *bufio.Reader
	served chan error
}

func newNetHTTPTarget(tb testing.TB, h http.Handler) *netHTTPTarget {
	t := &netHTTPTarget{srv: &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}, ln: newPipeListener(),
		served: make(chan error, 1)}
	go func() { t.served <- t.srv.Serve(t.ln) }()
	conn, err := t.ln.dial()
	if err != nil {
		tb.Fatal(err)
	}
	t.conn, t.answer = conn, bufio.NewReader(conn)
	return t
}

// close shuts the server down and waits for it: no goroutine is left behind.
func (t *netHTTPTarget) close(tb testing.TB) {
	_ = t.conn.Close()
	if err := t.srv.Shutdown(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if err := <-t.served; !errors.Is(err, http.ErrServerClosed) {
		tb.Fatal(err)
	}
}

// wireBatch is n deliveries written out as HTTP/1.1 requests, one after the other.
func wireBatch(tb testing.TB, sign scheme, n int) []byte {
	var buf bytes.Buffer
	for _, r := range buildBatch(tb, sign, n) {
		r.RequestURI = ""
		r.Host = "bench"
		if err := r.Write(&buf); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// runNetHTTP sends b.N deliveries through net/http to the handlers build makes, replacing the
// handler (and its server) every rebuildEvery deliveries as runDeliveries does, and fails
// unless every answer is 200 and the func ran once per delivery.
func runNetHTTP(b *testing.B, sign scheme, build handlerFunc) {
	var calls atomic.Int64
	var target *netHTTPTarget
	closeHandler := func() {}
	defer func() { closeHandler() }()
	served := 0
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for served < b.N {
		b.StopTimer()
		if served%rebuildEvery == 0 {
			closeHandler()
			h, closeH := build(b, &calls)
			target = newNetHTTPTarget(b, h)
			closeHandler = func() { target.close(b); closeH() }
		}
		n := min(batch, b.N-served, rebuildEvery-served%rebuildEvery)
		wire := wireBatch(b, sign, n)
		b.StartTimer()
		started := cpuTime()
		wrote := make(chan error, 1)
		go func() {
			_, err := target.conn.Write(wire)
			wrote <- err
		}()
		for i := range n {
			resp, err := http.ReadResponse(target.answer, nil)
			if err != nil {
				b.Fatalf("delivery %d: %v", served+i, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("delivery %d answered %d, want 200", served+i, resp.StatusCode)
			}
		}
		if err := <-wrote; err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - started
		served += n
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	closeHandler()
	closeHandler = func() {}
	if got := calls.Load(); got != int64(b.N) {
		b.Fatalf("the func ran %d times for %d new deliveries", got, b.N)
	}
}

// TestNetHTTPTakesTheInlinePath pins what BenchmarkCallbackHandlersNetHTTP measures for the
// SDK: built as sdkHandler builds it, mounted in net/http and reached over the in-memory
// HTTP/1.1 connection, its handler processes a delivery on the request's goroutine. Only that path answers a func still running
// at the budget with Connection: close (the other keeps the connection).
func TestNetHTTPTakesTheInlinePath(t *testing.T) {
	release := make(chan struct{})
	h, closeHandler := newSDKHandler(t, runway.WithResultTimeout(20*time.Millisecond),
		runway.WithResultFunc(func(context.Context, *runway.Result) error { <-release; return nil }))
	defer closeHandler()
	target := newNetHTTPTarget(t, h)
	wire := wireBatch(t, kieScheme, 1)
	wrote := make(chan error, 1)
	go func() {
		_, err := target.conn.Write(wire)
		wrote <- err
	}()
	resp, err := http.ReadResponse(target.answer, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	close(release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	target.close(t)
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Fatalf("status %d, Connection: close %v; want 503 and true (the request's goroutine path)", resp.StatusCode, resp.Close)
	}
}
