// Package runwaytest is an in-process fake of the Kie.ai Runway API for tests: every endpoint
// the runway client uses, with Kie's envelope, field names and error codes; scripted tasks that
// walk wait -> queueing -> generating -> success|fail; Kie-like signed callbacks with retries;
// switchable faults (dropped, duplicated, delayed and early callbacks, 429, 5xx bursts,
// connection resets, non-JSON bodies, unknown states, expired files, each of Kie's spellings of
// "not found"); and introspection with
// wait helpers so tests synchronise on events instead of sleeping.
//
// It runs on loopback (httptest) and needs no network and no key:
//
//	srv := runwaytest.NewServer()
//	defer srv.Close()
//	c, _ := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL))
//
// Every goroutine the server starts (step timers, callback senders, retries) stops on Close,
// which waits for them.
package runwaytest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// ErrClosed is returned by the wait helpers when the server closed before the condition held.
var ErrClosed = errors.New("runwaytest: server closed")

// API paths the fake serves.
const (
	PathGenerate        = "/api/v1/runway/generate"
	PathExtend          = "/api/v1/runway/extend"
	PathRecordDetail    = "/api/v1/runway/record-detail"
	PathAlephGenerate   = "/api/v1/aleph/generate"
	PathAlephRecordInfo = "/api/v1/aleph/record-info"
	PathCredit          = "/api/v1/chat/credit"
	PathDownloadURL     = "/api/v1/common/download-url"
	filesPrefix         = "/files/"
)

// Server is a running fake Kie API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to pass to runway.WithBaseURL, e.g. "http://127.0.0.1:41234".
	// Read-only.
	URL string
	// APIKey is the key the server accepts. Read-only.
	APIKey string

	cfg      config
	ts       *httptest.Server
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	cbClient *http.Client
	once     sync.Once

	mu         sync.Mutex
	closed     bool
	changed    chan struct{}
	tasks      map[string]*task
	order      []*task
	queued     []Script
	byPrompt   map[string]Script
	faults     []*injectedFault
	requests   []Request
	attempts   []CallbackAttempt
	credits    int
	window     []time.Time // admitted submissions inside the rate-limit window
	counter    uint64      // tasks created
	tmpCounter uint64      // temporary download URLs issued
	tmpFiles   map[string]tmpFile
	chaos      *chaosState
}

// NewServer starts a fake Kie API on a loopback port. Call Close when done.
func NewServer(opts ...Option) *Server {
	cfg := defaultConfig()
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&cfg)
		}
	}
	cfg.notFound = notFoundForm(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // duplicates and bursts of callbacks go to one receiver
	s := &Server{
		APIKey: cfg.apiKey,
		cfg:    cfg,
		ctx:    ctx,
		cancel: cancel,
		cbClient: &http.Client{
			Transport: tr,
			Timeout:   cfg.callbackTimeout,
			// A redirect is not a delivery: the 3xx counts as a failed attempt.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		changed:  make(chan struct{}),
		tasks:    make(map[string]*task),
		byPrompt: make(map[string]Script),
		credits:  DefaultCredits,
		tmpFiles: make(map[string]tmpFile),
	}
	if cfg.chaos != nil {
		s.chaos = newChaosState(*cfg.chaos)
	}
	if cfg.listener != nil {
		s.ts = &httptest.Server{Listener: cfg.listener, Config: &http.Server{Handler: http.HandlerFunc(s.serveHTTP)}}
		s.ts.Start()
	} else {
		s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	}
	s.URL = s.ts.URL
	return s
}

// Close stops the server: it cancels pending step timers, delays, callback attempts and
// retries, waits for every goroutine the server started and for running handlers, and closes
// idle connections. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.cancel()
		s.notifyLocked()
		s.mu.Unlock()
		s.ts.CloseClientConnections()
		s.ts.Close()
		s.wg.Wait()
		s.cbClient.CloseIdleConnections()
	})
}

// goTracked runs f in a goroutine that Close waits for; it returns false (and does not run f)
// once the server is closed.
func (s *Server) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// notifyLocked wakes every wait helper; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (called with s.mu held) is true, ctx ends or the server closes.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, closed, ch := cond(), s.closed, s.changed
		s.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// sleep waits d or until the server closes; false means closed.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// SetCredits sets the balance GET /api/v1/chat/credit reports. While it is 0 or less,
// submissions are refused with body code 402.
func (s *Server) SetCredits(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.credits = n
}
