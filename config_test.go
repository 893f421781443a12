package runway

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func noopResult(context.Context, *Result) error { return nil }

// captureHandler is a slog.Handler that keeps every record, at every level.
type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func (h *captureHandler) logger() *slog.Logger { return slog.New(h) }

// find returns the records whose message is msg.
func (h *captureHandler) find(msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

// attrs returns a record's attributes as strings.
func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

// TestNewCallbackHandlerPanicsOnMisconfiguration: a standalone handler that cannot work
// refuses to be built, saying what to do, instead of answering 500 or dropping results.
func TestNewCallbackHandlerPanicsOnMisconfiguration(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t,
		"runway: NewCallbackHandler: WithRefetch: a standalone handler has no client to fetch with; use Client.CallbackHandler(WithRefetch()), or drop WithRefetch",
		func() { NewCallbackHandler(WithRefetch(), WithResultFunc(noopResult)) })
	require.PanicsWithValue(t,
		"runway: NewCallbackHandler: no WithResultFunc: a standalone handler would drop every result; pass WithResultFunc(fn), or use Client.CallbackHandler to wake WaitForResult callers",
		func() { NewCallbackHandler(WithHMACKey(testKey1)) })
	require.PanicsWithValue(t,
		"runway: NewCallbackHandler: WithTolerance: -1s is not a positive duration; leave the option out for the default 5m0s\n"+
			"WithRefetch: a standalone handler has no client to fetch with; use Client.CallbackHandler(WithRefetch()), or drop WithRefetch\n"+
			"no WithResultFunc: a standalone handler would drop every result; pass WithResultFunc(fn), or use Client.CallbackHandler to wake WaitForResult callers",
		func() { NewCallbackHandler(WithTolerance(-time.Second), WithRefetch()) },
		"every problem, one per line")
	require.NotPanics(t, func() {
		NewCallbackHandler(WithResultFunc(noopResult), WithCallbackLogger(slog.New(slog.DiscardHandler)))
	})
}

// TestCallbackOptionRanges: every callback option refuses the values that cannot work, on
// both constructors, naming the option; the values at the edge of the range are accepted.
func TestCallbackOptionRanges(t *testing.T) {
	t.Parallel()
	bad := []struct {
		opt  CallbackOption
		want string
	}{
		{WithHMACKey(), "WithHMACKey: no non-empty key"},
		{WithHMACKey("", ""), "WithHMACKey: no non-empty key"},
		{WithTolerance(0), "WithTolerance: 0s is not a positive duration"},
		{WithTolerance(-1), "WithTolerance: -1ns is not a positive duration"},
		{WithMaxBodyBytes(0), "WithMaxBodyBytes: 0 is not a positive size"},
		{WithMaxBodyBytes(-1), "WithMaxBodyBytes: -1 is not a positive size"},
		{WithResultFunc(nil), "WithResultFunc: nil func"},
		{WithDeduper(nil), "WithDeduper: nil Deduper"},
		{WithClock(nil), "WithClock: nil clock"},
		{WithCallbackLogger(nil), "WithCallbackLogger: nil logger"},
		{WithResultTimeout(0), "WithResultTimeout: 0s is not a positive duration"},
		{WithResultTimeout(-time.Second), "WithResultTimeout: -1s is not a positive duration"},
	}
	c := newTestClient(t, WithLogger(slog.New(slog.DiscardHandler)))
	quiet := WithCallbackLogger(slog.New(slog.DiscardHandler))
	for _, tc := range bad {
		t.Run(tc.want, func(t *testing.T) {
			for name, build := range map[string]func(){
				"NewCallbackHandler":     func() { NewCallbackHandler(quiet, WithResultFunc(noopResult), tc.opt) },
				"Client.CallbackHandler": func() { c.CallbackHandler(quiet, tc.opt) },
			} {
				var got any
				func() {
					defer func() { got = recover() }()
					build()
				}()
				require.IsType(t, "", got, name)
				msg := got.(string)
				require.True(t, strings.HasPrefix(msg, "runway: "+name+": "+tc.want), "%s: %s", name, msg)
				require.NotContains(t, msg, "\n", "one problem, one line")
			}
		})
	}
	require.NotPanics(t, func() {
		NewCallbackHandler(quiet, WithResultFunc(noopResult), WithHMACKey("", testKey1), WithTolerance(1),
			WithMaxBodyBytes(1), WithResultTimeout(1), WithClock(time.Now), WithDeduper(NewMemoryDeduper(time.Minute)))
	})
}

// TestClientOptionRanges: NewClient reports every refused option in one error, one per line.
func TestClientOptionRanges(t *testing.T) {
	t.Parallel()
	_, err := NewClient(testKey, WithLogger(nil), WithMaxRetries(-1), WithHTTPClient(nil),
		WithRetryBackoff(0, time.Second), WithResultBus(nil), WithSubmitRateLimit(-1, time.Second),
		WithBaseURL("ftp://x"), WithCallbackURL("/relative"))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Equal(t, []string{
		"runway: NewClient: WithLogger: nil logger; pass slog.New(slog.DiscardHandler) to discard",
		"WithMaxRetries: negative count -1",
		"WithHTTPClient: nil *http.Client",
		"WithRetryBackoff: need 0 < min <= max, got 0s, 1s",
		"WithResultBus: nil bus",
		"WithSubmitRateLimit: need n >= 0 and a positive window, got -1 per 1s",
		"WithBaseURL: URL must be absolute http or https",
		"WithCallbackURL: URL must be absolute http or https",
	}, lines)
}

// TestWaitOptionRanges: WaitForResult refuses every bad option at once, one per line, before
// anything is sent; zero keeps its documented meaning only on WithWaitTimeout.
func TestWaitOptionRanges(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t)
		c := newPollClient(t, api)
		bad := []struct {
			opt  WaitOption
			want string
		}{
			{WithPollInterval(0), "runway: invalid request: WithPollInterval: 0s is not a positive interval; leave the option out for the default 30s"},
			{WithPollInterval(-1), "runway: invalid request: WithPollInterval: -1ns is not a positive interval; leave the option out for the default 30s"},
			{WithWaitTimeout(-1), "runway: invalid request: WithWaitTimeout: negative timeout -1ns"},
			{WithProgress(nil), "runway: invalid request: WithProgress: nil func"},
		}
		var all []WaitOption
		var lines []string
		for _, tc := range bad {
			_, err := c.WaitForResult(t.Context(), "t1", tc.opt)
			require.ErrorIs(t, err, ErrInvalidRequest)
			require.EqualError(t, err, tc.want)
			all = append(all, tc.opt)
			lines = append(lines, tc.want)
		}
		_, err := c.WaitForResult(t.Context(), "t1", all...)
		require.ErrorIs(t, err, ErrInvalidRequest)
		require.Equal(t, lines, strings.Split(err.Error(), "\n"))
		require.Zero(t, api.gets(), "nothing sent")
	})
}

// TestClientHandlersShareDeduper: two handlers of one client (two mounts) receiving the same
// task at the same time run the result func once and both answer with its outcome; a later
// redelivery to either is answered from the shared deduper.
func TestClientHandlersShareDeduper(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newTestClient(t, WithLogger(slog.New(slog.DiscardHandler)))
		var calls sync.Map // handler name -> count
		entered, release := make(chan struct{}, 2), make(chan struct{})
		fn := func(name string) CallbackOption {
			return WithResultFunc(func(ctx context.Context, r *Result) error {
				n, _ := calls.LoadOrStore(name, new(int))
				*n.(*int)++
				entered <- struct{}{}
				<-release
				return nil
			})
		}
		h1, h2 := c.CallbackHandler(fn("h1")), c.CallbackHandler(fn("h2"))
		body := runwayBody(testID, 200, "ok")
		codes := make(chan int, 2)
		go func() { codes <- serve(h1, newCallbackRequest(body, nil)).Code }()
		<-entered // h1's delivery runs the func
		go func() { codes <- serve(h2, newCallbackRequest(body, nil)).Code }()
		synctest.Wait() // h2's delivery is blocked: waiting for h1's, not running its own func
		require.Len(t, entered, 0)
		close(release)
		require.Equal(t, http.StatusOK, <-codes)
		require.Equal(t, http.StatusOK, <-codes)

		for _, h := range []*CallbackHandler{h1, h2} {
			require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(body, nil)).Code)
		}
		total := 0
		calls.Range(func(_, v any) bool { total += *v.(*int); return true })
		require.Equal(t, 1, total, "the result func ran once across both mounts")

		// A handler with a deduper of its own does not share.
		own := c.CallbackHandler(WithDeduper(NewMemoryDeduper(time.Minute)), WithResultFunc(noopResult))
		require.NotSame(t, h1.flights, own.flights)
		require.Same(t, h1.flights, h2.flights)
	})
}

// TestCallbackWrongKeyLogsWarn: a callback signed with another key is logged at warn level
// with the task id and the reason, and no key or signature.
func TestCallbackWrongKeyLogsWarn(t *testing.T) {
	t.Parallel()
	var logs captureHandler
	h := NewCallbackHandler(WithHMACKey(testKey1), WithClock(fixedClock), WithResultFunc(noopResult), WithCallbackLogger(logs.logger()))
	hdr := sign(testKey2, testID, testNowTS)
	require.Equal(t, http.StatusUnauthorized, serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), hdr)).Code)
	recs := logs.find("runway: callback rejected")
	require.Len(t, recs, 1)
	require.Equal(t, slog.LevelWarn, recs[0].Level)
	a := attrs(recs[0])
	require.Equal(t, "invalid_signature", a["reason"])
	require.Equal(t, testID, a["task_id"])
	require.Equal(t, "401", a["status"])
	require.Contains(t, a["error"], "invalid callback signature")
	for _, v := range a {
		require.NotContains(t, v, testKey1)
		require.NotContains(t, v, testKey2)
		require.NotContains(t, v, hdr[HeaderWebhookSignature])
	}
}

// wronglySignedCallback is a callback signed at now with a key the handler does not hold.
func wronglySignedCallback(now time.Time) *http.Request {
	ts := strconv.FormatInt(now.Unix(), 10)
	return newCallbackRequest(runwayBody(testID, 200, "ok"), sign(testKey2, testID, ts))
}

// TestCallbackRejectLogRateLimited: 1 000 bad callbacks within the interval log one line; the
// next line after the interval carries the count of the lines left out; another reason is
// not held back by the flood.
func TestCallbackRejectLogRateLimited(t *testing.T) {
	t.Parallel()
	var logs captureHandler
	clk := &fakeClock{t: testNow}
	advance := clk.advance
	h := NewCallbackHandler(WithHMACKey(testKey1), WithClock(clk.now), WithResultFunc(noopResult), WithCallbackLogger(logs.logger()))
	bad := func() *http.Request { return wronglySignedCallback(clk.now()) }
	for range 1000 {
		require.Equal(t, http.StatusUnauthorized, serve(h, bad()).Code)
		advance(5 * time.Millisecond) // 1 000 requests in 5 s, inside RejectLogInterval
	}
	require.Len(t, logs.find("runway: callback rejected"), 1)

	// Another reason is logged at once.
	wrongType := newCallbackRequest(runwayBody(testID, 200, "ok"), map[string]string{"Content-Type": "text/plain"})
	require.Equal(t, http.StatusUnsupportedMediaType, serve(h, wrongType).Code)
	recs := logs.find("runway: callback rejected")
	require.Len(t, recs, 2)
	require.Equal(t, "content_type", attrs(recs[1])["reason"])

	advance(RejectLogInterval)
	require.Equal(t, http.StatusUnauthorized, serve(h, bad()).Code)
	recs = logs.find("runway: callback rejected")
	require.Len(t, recs, 3)
	a := attrs(recs[2])
	require.Equal(t, "invalid_signature", a["reason"])
	require.Equal(t, "999", a["suppressed"])
	_, first := attrs(recs[0])["suppressed"]
	require.False(t, first, "the first line has nothing suppressed")
}

// TestCallbackRejectLogFlushesATail: the tail of a flood (refusals held back after the last
// line of their reason) is reported once its interval is over by the next refusal of any
// reason, in a line of its own, and only once.
func TestCallbackRejectLogFlushesATail(t *testing.T) {
	t.Parallel()
	var logs captureHandler
	clk := &fakeClock{t: testNow}
	advance := clk.advance
	h := NewCallbackHandler(WithHMACKey(testKey1), WithClock(clk.now), WithResultFunc(noopResult), WithCallbackLogger(logs.logger()))
	bad := func() *http.Request { return wronglySignedCallback(clk.now()) }
	wrongType := func() *http.Request {
		return newCallbackRequest(runwayBody(testID, 200, "ok"), map[string]string{"Content-Type": "text/plain"})
	}
	for range 50 {
		require.Equal(t, http.StatusUnauthorized, serve(h, bad()).Code)
		advance(10 * time.Millisecond)
	}
	require.Len(t, logs.find("runway: callback rejected"), 1)

	// Another reason inside the interval: logged, but the tail is not due yet.
	require.Equal(t, http.StatusUnsupportedMediaType, serve(h, wrongType()).Code)
	require.Empty(t, logs.find("runway: callback rejections suppressed"))

	// The flood has stopped; after the interval, the next refusal of another reason reports
	// the tail.
	advance(RejectLogInterval)
	require.Equal(t, http.StatusUnsupportedMediaType, serve(h, wrongType()).Code)
	tail := logs.find("runway: callback rejections suppressed")
	require.Len(t, tail, 1)
	a := attrs(tail[0])
	require.Equal(t, "invalid_signature", a["reason"])
	require.Equal(t, "49", a["suppressed"])
	require.Equal(t, slog.LevelWarn, tail[0].Level)

	// Reported once: neither another refusal nor the reason's own next line repeats it.
	advance(RejectLogInterval)
	require.Equal(t, http.StatusUnsupportedMediaType, serve(h, wrongType()).Code)
	require.Equal(t, http.StatusUnauthorized, serve(h, bad()).Code)
	require.Len(t, logs.find("runway: callback rejections suppressed"), 1)
	for _, rec := range logs.find("runway: callback rejected") {
		_, has := attrs(rec)["suppressed"]
		require.False(t, has, "no count repeated")
	}
}

// TestDefaultLoggerIsSlogDefault: with no logger given, the client, its handlers and a
// standalone handler log to slog.Default(), so signing being off and refused callbacks are
// visible out of the box. Not parallel: it replaces the process's default logger.
func TestDefaultLoggerIsSlogDefault(t *testing.T) {
	var logs captureHandler
	old := slog.Default()
	slog.SetDefault(logs.logger())
	t.Cleanup(func() { slog.SetDefault(old) })

	c := newTestClient(t)
	h := c.CallbackHandler()
	NewCallbackHandler(WithResultFunc(noopResult))
	off := logs.find("runway: callback signature verification is off (no WithHMACKey); unsigned callbacks are accepted")
	require.Len(t, off, 2, "one per handler")
	require.Equal(t, slog.LevelError, off[0].Level)

	keyed := c.CallbackHandler(WithHMACKey(testKey1), WithClock(fixedClock))
	require.Equal(t, http.StatusUnauthorized, serve(keyed, newCallbackRequest(runwayBody(testID, 200, "ok"), nil)).Code)
	rej := logs.find("runway: callback rejected")
	require.Len(t, rej, 1)
	require.Equal(t, slog.LevelWarn, rej[0].Level)
	require.Equal(t, "missing_signature", attrs(rej[0])["reason"])

	require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), nil)).Code)
	processed := logs.find("runway: callback processed")
	require.Len(t, processed, 1)
	require.Equal(t, slog.LevelDebug, processed[0].Level, "routine events at debug level")
}
