package runway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests pin what the SDK relies on from go-retryablehttp, each against the library
// alone, so that an upgrade that changes one of them fails here, by name, rather than as a
// subtle change in how the SDK retries.

// pinServer serves answers in turn (the last repeats) on a pipeNet and records each request's
// body and arrival time.
type pinServer struct {
	mu     sync.Mutex
	bodies []string
	at     []time.Time
}

func newPinServer(t *testing.T, answers ...func(http.ResponseWriter)) (*pinServer, *http.Client, string) {
	t.Helper()
	p := &pinServer{}
	srv, hc := newPipeServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		p.mu.Lock()
		n := len(p.bodies)
		p.bodies = append(p.bodies, string(b))
		p.at = append(p.at, time.Now())
		p.mu.Unlock()
		answers[min(n, len(answers)-1)](w)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(hc.CloseIdleConnections)
	return p, hc, srv.URL
}

func answerStatus(status int, body string, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// pinClient is a retryablehttp.Client set up the way the SDK sets up its own: every hook
// given, no logger.
func pinClient(hc *http.Client, check retryablehttp.CheckRetry, wait time.Duration) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient: hc, RetryMax: 3, RetryWaitMin: time.Second, RetryWaitMax: time.Minute,
		CheckRetry:   check,
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return wait },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

type pinKey struct{}

func retryOn5xx(_ context.Context, resp *http.Response, err error) (bool, error) {
	return err != nil || resp.StatusCode >= 500, nil
}

// The wait between attempts is exactly what Backoff returns: the library does not read
// Retry-After itself (the SDK's Backoff does, and caps it), and it does not add to the wait.
func TestPinRetryablehttpWaitsWhatBackoffReturns(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, hc, url := newPinServer(t, answerStatus(503, "busy", "Retry-After", "3600"), answerStatus(200, "ok"))
		var seen []string
		rc := pinClient(hc, retryOn5xx, 7*time.Second)
		rc.Backoff = func(_, _ time.Duration, _ int, resp *http.Response) time.Duration {
			seen = append(seen, resp.Header.Get("Retry-After"))
			return 7 * time.Second
		}
		// PrepareRetry (where the SDK logs and counts a retry) runs once per retry, after the
		// wait, on a request that still carries the call's context values.
		var prepared []time.Time
		rc.PrepareRetry = func(r *http.Request) error {
			assert.Equal(t, "v", r.Context().Value(pinKey{}))
			prepared = append(prepared, time.Now())
			return nil
		}
		ctx := context.WithValue(t.Context(), pinKey{}, "v")
		req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := rc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, []string{"3600"}, seen, "Backoff gets the failed answer, headers and all")
		require.Len(t, p.at, 2)
		require.Equal(t, 7*time.Second, p.at[1].Sub(p.at[0]))
		require.Equal(t, []time.Time{p.at[1]}, prepared)
	})
}

// A POST's body is rewound and sent whole again on each retry when it is given as []byte.
func TestPinRetryablehttpRewindsBodyOnRetry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, hc, url := newPinServer(t, answerStatus(429, `{"code":429}`), answerStatus(200, "ok"))
		rc := pinClient(hc, func(_ context.Context, resp *http.Response, err error) (bool, error) {
			return err != nil || resp.StatusCode == 429, nil
		}, time.Second)
		req, err := retryablehttp.NewRequestWithContext(t.Context(), http.MethodPost, url, []byte(`{"prompt":"a cat"}`))
		require.NoError(t, err)
		resp, err := rc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, []string{`{"prompt":"a cat"}`, `{"prompt":"a cat"}`}, p.bodies)
	})
}

// Cancelling the context during the wait ends Do at once with the context's error, without
// another attempt and without calling PrepareRetry.
func TestPinRetryablehttpCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p, hc, url := newPinServer(t, answerStatus(503, "busy"))
		rc := pinClient(hc, retryOn5xx, time.Hour)
		var prepared atomic.Int32
		rc.PrepareRetry = func(*http.Request) error { prepared.Add(1); return nil }
		ctx, cancel := context.WithCancel(t.Context())
		req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			resp, err := rc.Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			done <- err
		}()
		synctest.Wait()
		cancel()
		err = <-done
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, time.Since(start), "no part of the hour was waited")
		require.Len(t, p.bodies, 1)
		require.Zero(t, prepared.Load())
	})
}

// CheckRetry gets the response with its body unread (the SDK decodes the envelope there), and
// after CheckRetry says stop, the ErrorHandler gets that same response, not drained, with the
// error CheckRetry returned.
func TestPinRetryablehttpCheckRetrySeesBodyAndErrorHandlerKeepsIt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const last = `{"code":503,"msg":"still busy"}`
		_, hc, url := newPinServer(t, answerStatus(503, `{"code":503,"msg":"busy"}`), answerStatus(503, last))
		errGiveUp := errors.New("give up")
		var bodies []string
		calls := 0
		rc := pinClient(hc, func(_ context.Context, resp *http.Response, err error) (bool, error) {
			calls++
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			bodies = append(bodies, string(b))
			resp.Body = io.NopCloser(strings.NewReader(string(b))) // as the SDK keeps what it read
			if len(bodies) == 2 {
				return false, errGiveUp
			}
			return true, nil
		}, time.Second)
		var handled *http.Response
		rc.ErrorHandler = func(resp *http.Response, err error, attempts int) (*http.Response, error) {
			require.ErrorIs(t, err, errGiveUp)
			require.Equal(t, 2, attempts)
			handled = resp
			return retryablehttp.PassthroughErrorHandler(resp, err, attempts)
		}
		req, err := retryablehttp.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := rc.Do(req)
		require.ErrorIs(t, err, errGiveUp, "the error CheckRetry returned comes back as is")
		require.Same(t, handled, resp)
		b, rerr := io.ReadAll(resp.Body)
		require.NoError(t, rerr)
		resp.Body.Close()
		require.Equal(t, last, string(b), "the last answer's body survives to the caller")
		require.Equal(t, []string{`{"code":503,"msg":"busy"}`, last}, bodies, "CheckRetry saw every body whole")
		require.Equal(t, 2, calls, "one CheckRetry per attempt without a response handler")
	})
}

// closeCounter counts CloseIdleConnections calls on its transport.
type closeCounter struct {
	http.RoundTripper
	closes atomic.Int32
}

func (c *closeCounter) CloseIdleConnections() { c.closes.Add(1) }

// retryablehttp drops the pooled connections of its HTTP client whenever a Do fails, which is
// why the SDK hands it a copy of the user's client with keepIdle in front of the transport:
// the user's own transport never sees that call.
func TestPinRetryablehttpClosesIdleConnectionsOnFailure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, hc, url := newPinServer(t, answerStatus(401, `{"code":401}`))
		cc := &closeCounter{RoundTripper: hc.Transport}
		rc := pinClient(&http.Client{Transport: cc}, func(_ context.Context, resp *http.Response, err error) (bool, error) {
			return false, errors.New("refused")
		}, time.Second)
		req, err := retryablehttp.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := rc.Do(req)
		require.Error(t, err)
		resp.Body.Close()
		require.Positive(t, cc.closes.Load(), "the library closes idle connections after a failure; keepIdle can go if this fails")

		// The SDK's client: the same failure leaves the user's transport alone.
		user := &closeCounter{RoundTripper: hc.Transport}
		c, err := NewClient(testKey, WithBaseURL(url), WithHTTPClient(&http.Client{Transport: user}))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, c.Close()) })
		_, err = c.Credits(t.Context())
		require.ErrorIs(t, err, ErrUnauthorized)
		require.Zero(t, user.closes.Load())
	})
}

// The SDK's CheckRetry gives the same answer and reads the body once however often the
// library asks about the same attempt (v0.7.8 asks once without a response handler; older
// versions asked twice with one).
func TestCheckRetryIsIdempotentPerAttempt(t *testing.T) {
	t.Parallel()
	c, err := NewClient(testKey)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	reads := 0
	body := &countingBody{r: strings.NewReader(`{"code":429,"msg":"slow down"}`), reads: &reads}
	resp := &http.Response{StatusCode: 503, Header: http.Header{}, Body: body}
	st := &callState{kind: kindSubmit, method: http.MethodPost, path: "/p", maxRetries: 2}
	ctx := withCallState(t.Context(), st)
	for range 3 {
		retry, err := c.checkRetry(ctx, resp, nil)
		require.True(t, retry, "a 429 inside a 503 is re-sent")
		require.ErrorIs(t, err, ErrRateLimited)
	}
	require.Equal(t, 2, reads, "the body was read once (content, then EOF)")

	// A transport error after a connection: may have arrived, never re-sent, however often asked.
	st2 := &callState{kind: kindSubmit, method: http.MethodPost, path: "/p", maxRetries: 2}
	st2.connected.Store(true)
	ctx2 := withCallState(t.Context(), st2)
	for range 3 {
		retry, err := c.checkRetry(ctx2, nil, io.ErrUnexpectedEOF)
		require.False(t, retry)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.True(t, st2.sent)
	}
}

type countingBody struct {
	r     io.Reader
	reads *int
}

func (b *countingBody) Read(p []byte) (int, error) { *b.reads++; return b.r.Read(p) }
func (b *countingBody) Close() error               { return nil }

// The client builds its retryablehttp.Client once, with every hook set and no library logger,
// on a copy of the user's HTTP client whose transport hides CloseIdleConnections.
func TestRetryClientBuiltOnce(t *testing.T) {
	t.Parallel()
	user := &http.Client{Transport: &http.Transport{}}
	c, err := NewClient(testKey, WithHTTPClient(user), WithMaxRetries(2), WithRetryBackoff(time.Second, 5*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	rc := c.api
	require.Nil(t, rc.Logger, "the library's stderr logger is never used")
	require.Equal(t, 2, rc.RetryMax)
	require.Equal(t, time.Second, rc.RetryWaitMin)
	require.Equal(t, 5*time.Second, rc.RetryWaitMax)
	require.NotNil(t, rc.CheckRetry)
	require.NotNil(t, rc.Backoff)
	require.NotNil(t, rc.PrepareRetry)
	require.NotNil(t, rc.ErrorHandler)
	require.NotSame(t, user, rc.HTTPClient)
	require.Equal(t, keepIdle{user.Transport}, rc.HTTPClient.Transport)
	_, _ = c.Credits(canceledContext(t))
	require.Same(t, rc, c.api, "calls share the one client")
}

func canceledContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
