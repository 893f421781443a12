package runway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// sequence answers the i-th request with steps[i] (the last step repeats).
func sequence(steps ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := min(n, len(steps)-1)
		n++
		mu.Unlock()
		steps[i](w, r)
	}
}

func status(httpStatus, code int, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		reply(w, httpStatus, code, fmt.Sprintf("answer %d/%d", httpStatus, code), nil)
	}
}

// hangUp closes the connection without a response.
func hangUp(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if assert.NoError(t, err) {
			_ = conn.Close()
		}
	}
}

// cutBody promises a longer body than it sends, then closes the connection.
func cutBody(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":200,")
		_ = buf.Flush()
		_ = conn.Close()
	}
}

var credits7 = func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, 200, "success", 7) }

func generateReq() GenerateRequest {
	return GenerateRequest{Prompt: "a cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9}
}

func TestSafeRequestRetriedThenSucceeds(t *testing.T) {
	t.Parallel()
	tests := map[string]http.HandlerFunc{
		"HTTP 503": status(503, 503),
		"HTTP 502 non-JSON": func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html>bad gateway</html>")
		},
		"HTTP 200 body code 500":   status(200, 500),
		"HTTP 200 body code 455":   status(200, 455),
		"HTTP 200 body code 429":   status(200, 429),
		"HTTP 429":                 status(429, 429),
		"connection closed":        hangUp(t),
		"EOF mid-body":             cutBody(t),
		"HTTP 500 with code 200!?": status(500, 200),
	}
	for name, first := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c, f := setup(t, sequence(first, credits7))
				n, err := c.Credits(t.Context())
				require.NoError(t, err)
				require.Equal(t, 7, n)
				require.Equal(t, 2, f.count())
				require.Len(t, f.waits(), 1)
			})
		})
	}
}

func TestSafeRequestRetriedAfterAttemptTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		hc := &http.Client{Timeout: time.Second}
		c, f := setup(t, sequence(func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // never sends headers; the per-attempt timeout ends it
		}, credits7), WithHTTPClient(hc))
		n, err := c.Credits(t.Context())
		require.NoError(t, err)
		require.Equal(t, 7, n)
		require.Equal(t, 2, f.count())
	})
}

func TestSafeRequestNotRetried(t *testing.T) {
	t.Parallel()
	for _, code := range []int{400, 401, 402, 404, 422, 451, 501, 505} {
		for _, httpStatus := range []int{code, 200} {
			t.Run(fmt.Sprintf("HTTP %d code %d", httpStatus, code), func(t *testing.T) {
				t.Parallel()
				c, f := setup(t, sequence(status(httpStatus, code), credits7))
				_, err := c.GetTask(t.Context(), "task-1")
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, code, ae.Code)
				require.Equal(t, 1, f.count())
				require.Empty(t, f.waits())
			})
		}
	}
}

func TestSafeRequestRetriesExhaustedKeepLastError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSafeRequestRetriesExhaustedKeepLastError)
}

func testSafeRequestRetriesExhaustedKeepLastError(t *testing.T) {
	c, f := setup(t, status(503, 503), WithMaxRetries(2))
	_, err := c.GetTask(t.Context(), "task-1")
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 503, ae.StatusCode)
	require.Equal(t, "answer 503/503", ae.Message)
	require.JSONEq(t, `{"code":503,"msg":"answer 503/503","data":null}`, string(ae.Body), "the last error body survives the retries")
	require.Equal(t, 3, f.count())
	require.Len(t, f.waits(), 2)
	require.NotErrorIs(t, err, ErrOutcomeUnknown)

	c, f = setup(t, status(503, 503), WithMaxRetries(0))
	_, err = c.Credits(t.Context())
	require.ErrorIs(t, err, ErrServer)
	require.Equal(t, 1, f.count())
}

func TestSubmissionNotRetriedAfterServerError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		first       http.HandlerFunc
		wantUnknown bool
		wantIs      error
	}{
		{"HTTP 500", status(500, 500), true, ErrServer},
		{"HTTP 502 body code 500", status(502, 500), true, ErrServer},
		{"HTTP 503 body code 500", status(503, 500), true, ErrServer},
		{"HTTP 200 body code 500", status(200, 500), true, ErrServer},
		{"HTTP 502 non-JSON", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) }, true, ErrServer},
		{"HTTP 200 body code 501", status(200, 501), true, ErrServer},
		{"HTTP 503", status(503, 503), true, ErrServer},
		{"connection closed after sending", hangUp(t), true, nil},
		{"HTTP 200 non-JSON page", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("<html><body>OK</body></html>"))
		}, true, nil},
		{"HTTP 200 cut JSON", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"code":200,"msg":"success","data":{"taskId":"tas`))
		}, true, nil},
		{"HTTP 455 maintenance", status(455, 455), false, ErrMaintenance},
		{"HTTP 200 body code 505", status(200, 505), false, ErrFeatureDisabled},
		{"HTTP 401", status(401, 401), false, ErrUnauthorized},
		{"HTTP 200 body code 422", status(200, 422), false, ErrValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, sequence(tt.first, replyTaskID("task-2")))
			_, err := c.Generate(t.Context(), generateReq())
			require.Error(t, err)
			require.Equal(t, 1, f.count(), "a submission is never re-sent after it may have arrived")
			require.Empty(t, f.waits())
			require.Equal(t, tt.wantUnknown, errors.Is(err, ErrOutcomeUnknown), err.Error())
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			var ae *APIError
			if errors.As(err, &ae) {
				require.Equal(t, tt.wantUnknown, ae.MayExist)
			}
			if tt.wantUnknown {
				require.Contains(t, err.Error(), "may have been created")
			}
		})
	}
}

func TestSubmissionNotRetriedAfterClientTimeout(t *testing.T) {
	t.Parallel()
	hc := &http.Client{Timeout: 100 * time.Millisecond}
	c, f := setup(t, func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the client gives up
	}, WithHTTPClient(hc))
	_, err := c.Generate(t.Context(), generateReq())
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.Equal(t, 1, f.count())
	require.Empty(t, f.waits())
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
}

func TestSubmissionCancelledInFlightIsUnknown(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	c, f := setup(t, func(_ http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Generate(ctx, generateReq())
		done <- err
	}()
	<-arrived
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.Equal(t, 1, f.count())
}

func TestSubmissionRetriedAfter429(t *testing.T) {
	t.Parallel()
	// A body code 429 means "rejected, not queued" whatever the HTTP status: Kie models its
	// errors as HTTP 500 with a body code, so 5xx + 429 is re-sent too.
	for _, first := range []http.HandlerFunc{status(429, 429), status(200, 429), status(500, 429), status(502, 429), status(503, 429)} {
		synctest.Test(t, func(t *testing.T) { testSubmissionRetriedAfter429(t, first) })
	}
}

func testSubmissionRetriedAfter429(t *testing.T, first http.HandlerFunc) {
	c, f := setup(t, sequence(first, first, replyTaskID("task-3")))
	id, err := c.Generate(t.Context(), generateReq())
	require.NoError(t, err)
	require.Equal(t, "task-3", id)
	reqs := f.requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs[1:] {
		require.Equal(t, string(reqs[0].Body), string(r.Body), "the body is re-sent whole")
	}
	require.Len(t, f.waits(), 2)
}

func TestSubmissionRetriedAfterDialFailure(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSubmissionRetriedAfterDialFailure)
}

func testSubmissionRetriedAfterDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens: every dial is refused

	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	c, err := NewClient(testKey, WithBaseURL("http://"+addr+apiPrefix), WithMaxRetries(3), WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	start := time.Now()
	_, err = c.Generate(t.Context(), generateReq())
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrOutcomeUnknown, "a refused dial never reached the server")
	require.EqualValues(t, 4, dials.Load(), "refused dials are retried")
	require.GreaterOrEqual(t, time.Since(start), 3*DefaultRetryWaitMin, "after a wait each")
	require.NotContains(t, err.Error(), testKey)
}

// hangingDial returns an HTTP client whose every dial blocks until its context ends, counting
// the dials and signalling each on dialling: a request through it never reaches any server.
func hangingDial(timeout time.Duration) (hc *http.Client, dials *atomic.Int32, dialling chan struct{}) {
	dials = new(atomic.Int32)
	dialling = make(chan struct{}, 16)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials.Add(1)
		select {
		case dialling <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	return &http.Client{Transport: tr, Timeout: timeout}, dials, dialling
}

func TestSubmissionTimedOutBeforeConnectingIsRetried(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// Every dial blocks until its context ends: the transport's own dial context outlives
		// the request, so the dials also end when the test does.
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		var dials atomic.Int32
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-stop:
				return nil, net.ErrClosed
			}
		}}
		hc := &http.Client{Transport: tr, Timeout: 20 * time.Millisecond}
		c, err := NewClient(testKey, WithBaseURL("http://runway.invalid"+apiPrefix), WithHTTPClient(hc), WithMaxRetries(2))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, c.Close()) })
		start := time.Now()
		_, err = c.Generate(t.Context(), generateReq())
		require.Error(t, err)
		require.NotErrorIs(t, err, ErrOutcomeUnknown, "no connection was made, so no task can exist")
		require.EqualValues(t, 3, dials.Load(), "an attempt that never connected is safe to repeat")
		require.GreaterOrEqual(t, time.Since(start), 2*DefaultRetryWaitMin+3*20*time.Millisecond, "two waits between three attempts")
	})
}

func TestSubmissionCancelledWhileDiallingIsNotUnknown(t *testing.T) {
	t.Parallel()
	hc, dials, dialling := hangingDial(time.Hour)
	c, err := NewClient(testKey, WithBaseURL("http://runway.invalid"+apiPrefix), WithHTTPClient(hc))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Generate(ctx, generateReq())
		done <- err
	}()
	<-dialling
	cancel()
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrOutcomeUnknown)
	require.EqualValues(t, 1, dials.Load())
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const waitMin, waitMax = 250 * time.Millisecond, 30 * time.Second
	tests := []struct {
		name     string
		first    http.HandlerFunc
		post     bool
		wantWait time.Duration
	}{
		{"seconds honoured", status(429, 429, "Retry-After", "1"), false, time.Second},
		{"seconds on a 503", status(503, 503, "Retry-After", "2"), false, 2 * time.Second},
		{"seconds with envelope code 429", status(200, 429, "Retry-After", "3"), false, 3 * time.Second},
		{"seconds on a submission 429", status(429, 429, "Retry-After", "1"), true, time.Second},
		{"HTTP date honoured", status(429, 429, "Retry-After", now.Add(5*time.Second).Format(http.TimeFormat)), false, 5 * time.Second},
		{"huge seconds capped", status(429, 429, "Retry-After", "3600"), false, waitMax},
		{"overflowing seconds capped", status(429, 429, "Retry-After", "99999999999999999999999"), false, waitMax},
		{"far HTTP date capped", status(429, 429, "Retry-After", now.Add(72*time.Hour).Format(http.TimeFormat)), true, waitMax},
		{"past HTTP date falls back", status(429, 429, "Retry-After", now.Add(-time.Minute).Format(http.TimeFormat)), false, waitMin},
		{"malformed falls back", status(429, 429, "Retry-After", "soon"), false, waitMin},
		{"negative falls back", status(503, 503, "Retry-After", "-5"), false, waitMin},
		{"fraction falls back", status(503, 503, "Retry-After", "1.5"), false, waitMin},
		{"zero falls back", status(503, 503, "Retry-After", "0"), false, waitMin},
		{"absent: backoff", status(503, 503), false, waitMin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { testRetryAfter(t, tt.first, tt.post, tt.wantWait, now, waitMin, waitMax) })
		})
	}
}

func testRetryAfter(t *testing.T, first http.HandlerFunc, post bool, wantWait time.Duration, now time.Time, waitMin, waitMax time.Duration) {
	c, f := setup(t, sequence(first, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			replyTaskID("t")(w, r)
			return
		}
		credits7(w, r)
	}), WithRetryBackoff(waitMin, waitMax))
	c.now = func() time.Time { return now }
	var err error
	if post {
		_, err = c.Generate(t.Context(), generateReq())
	} else {
		_, err = c.Credits(t.Context())
	}
	require.NoError(t, err)
	require.Equal(t, []time.Duration{wantWait}, f.waits())
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	t.Parallel()
	const lo, hi = time.Second, 30 * time.Second
	for attempt := range 40 {
		ceil := min(hi, lo<<min(attempt, 20))
		for range 50 {
			d := backoff(lo, hi, attempt, 0)
			require.GreaterOrEqual(t, d, lo)
			require.LessOrEqual(t, d, ceil, "attempt %d", attempt)
		}
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[backoff(lo, hi, 5, 0)] = true
	}
	require.Greater(t, len(seen), 1, "backoff is jittered")
	require.Equal(t, 7*time.Second, backoff(lo, hi, 3, 7*time.Second))
	require.Equal(t, hi, backoff(lo, hi, 0, time.Hour))
	huge := time.Duration(1<<63 - 1)
	require.LessOrEqual(t, backoff(huge/4, huge, 10, 0), huge, "no overflow near the top of the range")
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"86400", maxRetryAfter, true},
		{"86401", maxRetryAfter, true},
		{"18446744073709551616", maxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.ANSIC), 90 * time.Second, true},
		{now.Add(100 * 24 * time.Hour).Format(http.TimeFormat), maxRetryAfter, true},
		{now.Format(http.TimeFormat), 0, false},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"10s", 0, false},
		{"soon", 0, false},
		{"Fri, 32 Nov 2026 99:00:00 GMT", 0, false},
		{strings.Repeat("9", 65), 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		require.Equal(t, tt.wantOK, ok, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"1", "0", "120", "-1", "1.5", "", " ", "soon", "99999999999999999999",
		"Fri, 02 Jan 2026 03:05:00 GMT", "Friday, 02-Jan-26 03:05:00 GMT", "Fri Jan  2 03:05:00 2026",
		"Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if !ok {
			if d != 0 {
				t.Fatalf("parseRetryAfter(%q) = %v, false: want 0 when not ok", s, d)
			}
			return
		}
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v: outside [0, %v]", s, d, maxRetryAfter)
		}
		v := strings.TrimSpace(s)
		if v == "" {
			t.Fatalf("parseRetryAfter(%q) ok for a blank value", s)
		}
		if _, err := http.ParseTime(v); err != nil && strings.Trim(v, "0123456789") != "" {
			t.Fatalf("parseRetryAfter(%q) ok for a value that is neither digits nor an HTTP date", s)
		}
	})
}

// TestContextCancelledMidBackoff runs alone (no t.Parallel) so goleak sees only its own
// goroutines.
func TestContextCancelledMidBackoff(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs after the fake server is closed

	tests := []struct {
		name        string
		first       http.HandlerFunc
		call        func(context.Context, *Client) error
		wantInError string
	}{
		{"GET after 503", status(503, 503), func(ctx context.Context, c *Client) error { _, err := c.Credits(ctx); return err }, "code 503"},
		{"GET after connection closed", hangUp(t), func(ctx context.Context, c *Client) error { _, err := c.GetTask(ctx, "t"); return err }, "EOF"},
		{"POST after 429", status(429, 429), func(ctx context.Context, c *Client) error { _, err := c.Generate(ctx, generateReq()); return err }, "code 429"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, f := setup(t, tt.first)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- tt.call(ctx, c) }()
				synctest.Wait() // the call failed once and waits out its backoff
				require.Equal(t, 1, f.count())
				cancel()
				err := <-done
				require.Zero(t, time.Since(start), "the cancel ends the backoff at once")
				require.ErrorIs(t, err, context.Canceled)
				require.NotErrorIs(t, err, ErrOutcomeUnknown, "nothing was in flight when the ctx ended")
				require.Contains(t, err.Error(), tt.wantInError, "the error says what was being retried")
				require.Equal(t, 1, f.count(), "no attempt after the cancel")
			})
		})
	}
}
