package runway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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

const testAPIKey = "sk-download-test-key"

// downloadPayload is a deterministic file body.
func downloadPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// fileHost is a local file server that records every request and delegates to handle.
type fileHost struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	handle func(w http.ResponseWriter, r *http.Request, n int) // n: 1-based request number
}

func newFileHost(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *fileHost {
	t.Helper()
	h := &fileHost{handle: handle}
	h.Server = newPipeHostServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.reqs = append(h.reqs, r.Clone(context.Background()))
		n := len(h.reqs)
		h.mu.Unlock()
		for name, vals := range r.Header {
			assert.NotEqual(t, "Authorization", name, "Authorization header reached the file host")
			for _, v := range vals {
				assert.NotContains(t, v, testAPIKey, "API key reached the file host in %s", name)
			}
		}
		h.handle(w, r, n)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *fileHost) requests() []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.reqs...)
}

// serveFile serves body with Range support (http.ServeContent) and a strong ETag.
func serveFile(body []byte, contentType string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("ETag", `"v1"`)
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}
}

// cutAfter sends a 200 announcing the whole body, writes only the first n bytes, then drops
// the connection.
func cutAfter(w http.ResponseWriter, body []byte, n int, acceptRanges bool) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ranges := ""
	if acceptRanges {
		ranges = "Accept-Ranges: bytes\r\nETag: \"v1\"\r\n"
	}
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n", len(body), ranges)
	buf.Write(body[:n])
	buf.Flush()
}

// recordedSleeps is a slog handler that records the waits the client logs before each
// download retry. Downloads that retry run inside a synctest bubble, where the waits
// themselves take no real time.
type recordedSleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *recordedSleeps) Enabled(context.Context, slog.Level) bool { return true }
func (s *recordedSleeps) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *recordedSleeps) WithGroup(string) slog.Handler            { return s }

func (s *recordedSleeps) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "runway: retrying download" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "wait" {
			s.mu.Lock()
			s.d = append(s.d, a.Value.Duration())
			s.mu.Unlock()
		}
		return true
	})
	return nil
}

func (s *recordedSleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// newDownloadClient returns a client on apiURL (may be "") whose download retry waits are
// recorded, dialling the tests' in-memory file hosts; extra options come last.
func newDownloadClient(t *testing.T, apiURL string, extra ...Option) (*Client, *recordedSleeps) {
	t.Helper()
	s := &recordedSleeps{}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialPipeHost}}
	opts := []Option{WithRetryBackoff(time.Second, 30*time.Second), WithHTTPClient(hc), WithLogger(slog.New(s))}
	if apiURL != "" {
		opts = append(opts, WithBaseURL(apiURL))
	}
	c, err := NewClient(testAPIKey, append(opts, extra...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		c.hc.CloseIdleConnections()
		_ = c.Close()
	})
	return c, s
}

// downloadURLAPI answers download-url with fresh (and counts the calls).
type downloadURLAPI struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
	asked []string
}

func newDownloadURLAPI(t *testing.T, fresh func() string) *downloadURLAPI {
	t.Helper()
	a := &downloadURLAPI{}
	a.Server = newPipeHostServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/api/v1/common/download-url", r.URL.Path)
		assert.Equal(t, "Bearer "+testAPIKey, r.Header.Get("Authorization"))
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.calls++
		a.asked = append(a.asked, string(body))
		a.mu.Unlock()
		fmt.Fprintf(w, `{"code":200,"msg":"success","data":%q}`, fresh())
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *downloadURLAPI) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func verifyNoDownloadLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func TestDownloadPlainSendsNoCredentials(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(300 << 10)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/file.mp4?sig=abc", http.StatusFound)
			return
		}
		serveFile(body, "video/mp4")(w, r, n)
	})
	c, sl := newDownloadClient(t, "")

	for _, p := range []string{"/file.mp4", "/redirect"} {
		var buf bytes.Buffer
		n, err := c.Download(context.Background(), host.URL+p, &buf, WithAllowPrivateHosts())
		require.NoError(t, err, p)
		require.Equal(t, int64(len(body)), n)
		require.Equal(t, body, buf.Bytes())
	}
	reqs := host.requests()
	require.Len(t, reqs, 3) // file, redirect, redirect target
	for _, r := range reqs {
		require.Empty(t, r.Header.Get("Authorization"))
		require.Empty(t, r.Header.Get("Range"))
		require.Equal(t, "identity", r.Header.Get("Accept-Encoding"))
	}
	require.Empty(t, sl.all(), "no retries expected")
}

func TestDownloadResumesWithRange(t *testing.T) {
	verifyNoDownloadLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		body := downloadPayload(256 << 10)
		const cut = 100 << 10
		host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				cutAfter(w, body, cut, true)
				return
			}
			serveFile(body, "")(w, r, n)
		})
		c, sl := newDownloadClient(t, "")

		var buf bytes.Buffer // not rewindable: only a correct resume can succeed
		var calls [][2]int64
		n, err := c.Download(context.Background(), host.URL+"/v.mp4", &buf, WithAllowPrivateHosts(),
			WithDownloadProgress(func(done, total int64) { calls = append(calls, [2]int64{done, total}) }))
		require.NoError(t, err)
		require.Equal(t, int64(len(body)), n)
		require.Equal(t, body, buf.Bytes())

		reqs := host.requests()
		require.Len(t, reqs, 2)
		require.Equal(t, "bytes="+strconv.Itoa(cut)+"-", reqs[1].Header.Get("Range"))
		require.Equal(t, `"v1"`, reqs[1].Header.Get("If-Range"))
		require.Len(t, sl.all(), 1)
		requireMonotonic(t, calls, int64(len(body)))
	})
}

func requireMonotonic(t *testing.T, calls [][2]int64, total int64) {
	t.Helper()
	require.NotEmpty(t, calls)
	for i := 1; i < len(calls); i++ {
		require.GreaterOrEqual(t, calls[i][0], calls[i-1][0], "progress went back at call %d: %v", i, calls)
	}
	require.Equal(t, [2]int64{total, total}, calls[len(calls)-1])
}

func TestDownloadRestartsWhenRangeUnsupported(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(200 << 10)
	noRanges := func(w http.ResponseWriter, r *http.Request, n int) {
		if n%2 == 1 {
			cutAfter(w, body, 150<<10, false)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body) // ignores Range
	}

	t.Run("file is truncated and rewritten", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			host := newFileHost(t, noRanges)
			c, _ := newDownloadClient(t, "")
			f, err := os.Create(filepath.Join(t.TempDir(), "out"))
			require.NoError(t, err)
			defer f.Close()
			_, err = f.WriteString("HEADER") // the download starts at this offset and keeps it
			require.NoError(t, err)

			var calls [][2]int64
			n, err := c.Download(context.Background(), host.URL+"/v", f, WithAllowPrivateHosts(),
				WithDownloadProgress(func(done, total int64) { calls = append(calls, [2]int64{done, total}) }))
			require.NoError(t, err)
			require.Equal(t, int64(len(body)), n)
			got, err := os.ReadFile(f.Name())
			require.NoError(t, err)
			require.Equal(t, append([]byte("HEADER"), body...), got)
			require.Equal(t, "bytes=153600-", host.requests()[1].Header.Get("Range"))
			requireMonotonic(t, calls, int64(len(body)))
		})
	})

	t.Run("plain writer reports partial data", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			host := newFileHost(t, noRanges)
			c, _ := newDownloadClient(t, "")
			var buf bytes.Buffer
			n, err := c.Download(context.Background(), host.URL+"/v", &buf, WithAllowPrivateHosts())
			require.ErrorIs(t, err, ErrPartialWrite)
			var de *DownloadError
			require.ErrorAs(t, err, &de)
			require.Equal(t, int64(150<<10), de.Written)
			require.Equal(t, int64(buf.Len()), n)
		})
	})
}

func TestDownloadDetectsLengthMismatch(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(64 << 10)

	t.Run("body shorter than Content-Length", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			host := newFileHost(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				cutAfter(w, body, 1000, false)
			})
			c, sl := newDownloadClient(t, "")
			f, err := os.Create(filepath.Join(t.TempDir(), "out"))
			require.NoError(t, err)
			defer f.Close()
			_, err = c.Download(context.Background(), host.URL+"/v", f, WithAllowPrivateHosts(), WithDownloadRetries(2))
			require.ErrorIs(t, err, ErrIncomplete)
			require.Len(t, host.requests(), 3)
			require.Len(t, sl.all(), 2)
		})
	})

	t.Run("body longer than announced", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					cutAfter(w, body[:2000], 1000, true)
					return
				}
				w.Header().Set("Content-Range", "bytes 1000-1999/2000")
				w.WriteHeader(http.StatusPartialContent)
				http.NewResponseController(w).Flush() // chunked: no Content-Length to stop the body
				w.Write(body[1000:4000])
			})
			c, _ := newDownloadClient(t, "")
			var buf bytes.Buffer
			_, err := c.Download(context.Background(), host.URL+"/v", &buf, WithAllowPrivateHosts())
			require.ErrorIs(t, err, ErrIncomplete)
			require.ErrorContains(t, err, "longer than the announced 2000 bytes")
			require.LessOrEqual(t, buf.Len(), 2000)
		})
	})

	t.Run("size changes between attempts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					cutAfter(w, body, 1000, true)
					return
				}
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 1000-%d/%d", len(body), len(body)+1))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(body[1000:])
			})
			c, _ := newDownloadClient(t, "")
			var buf bytes.Buffer
			_, err := c.Download(context.Background(), host.URL+"/v", &buf, WithAllowPrivateHosts())
			require.ErrorIs(t, err, ErrIncomplete)
			require.ErrorContains(t, err, "size changed")
		})
	})
}

func TestDownloadRetriesTransientStatuses(t *testing.T) {
	verifyNoDownloadLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		body := downloadPayload(10 << 10)
		host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
			switch n {
			case 1:
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
			case 2:
				w.WriteHeader(http.StatusBadGateway)
			default:
				serveFile(body, "")(w, r, n)
			}
		})
		c, sl := newDownloadClient(t, "")
		var buf bytes.Buffer
		_, err := c.Download(context.Background(), host.URL+"/v", &buf, WithAllowPrivateHosts())
		require.NoError(t, err)
		require.Equal(t, body, buf.Bytes())
		waits := sl.all()
		require.Len(t, waits, 2)
		require.Equal(t, 7*time.Second, waits[0], "Retry-After honoured")

	})
	t.Run("not retried", func(t *testing.T) {
		host := newFileHost(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.WriteHeader(http.StatusNotImplemented)
		})
		c, _ := newDownloadClient(t, "")
		_, err := c.Download(context.Background(), host.URL+"/v", io.Discard, WithAllowPrivateHosts())
		require.ErrorIs(t, err, ErrServer)
		require.Len(t, host.requests(), 1)
	})
}

// TestDownloadRefreshesExpiredLink is issue 6 item 3 and hardening B15: a refused link is
// refreshed once through download-url, and with debug logging on neither the refreshed
// link's signed query nor the API key reaches the logs or the error.
func TestDownloadRefreshesExpiredLink(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(20 << 10)
	var freshOK atomic.Bool
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/fresh.mp4" && freshOK.Load() {
			assert.Equal(t, "SECRET", r.URL.Query().Get("sig"))
			serveFile(body, "")(w, r, n)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	api := newDownloadURLAPI(t, func() string { return host.URL + "/fresh.mp4?sig=SECRET" })
	// requireNoSecrets checks a debug-level JSON log and the error, if any.
	requireNoSecrets := func(t *testing.T, logs string, err error) {
		t.Helper()
		require.Contains(t, logs, `"msg":"runway: download link refreshed"`, "the debug log was written")
		texts := []string{logs}
		if err != nil {
			texts = append(texts, err.Error())
		}
		for _, text := range texts {
			for _, secret := range []string{"SECRET", "sig=", testAPIKey} {
				require.NotContains(t, text, secret)
			}
		}
	}
	jsonLogger := func(logs *logBuffer) Option {
		return WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}

	t.Run("fresh link works", func(t *testing.T) {
		freshOK.Store(true)
		var logs logBuffer
		c, _ := newDownloadClient(t, api.URL, jsonLogger(&logs))
		var buf bytes.Buffer
		n, err := c.Download(context.Background(), host.URL+"/old.mp4", &buf, WithAllowPrivateHosts())
		require.NoError(t, err)
		require.Equal(t, int64(len(body)), n)
		require.Equal(t, body, buf.Bytes())
		require.Equal(t, 1, api.count())
		require.Contains(t, api.asked[0], host.URL+"/old.mp4")
		requireNoSecrets(t, logs.String(), nil)
	})

	t.Run("fresh link refused too: refreshed once, no secret in the error", func(t *testing.T) {
		freshOK.Store(false)
		var logs logBuffer
		c, _ := newDownloadClient(t, api.URL, jsonLogger(&logs))
		before := api.count()
		_, err := c.Download(context.Background(), host.URL+"/old.mp4", io.Discard, WithAllowPrivateHosts())
		require.ErrorIs(t, err, ErrNotFound)
		require.Equal(t, before+1, api.count())
		require.Contains(t, err.Error(), "/fresh.mp4")
		requireNoSecrets(t, logs.String(), err)
	})
}

func TestDownloadSizeCap(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(50 << 10)
	tests := []struct {
		name    string
		chunked bool
	}{{"announced", false}, {"chunked", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := newFileHost(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				if !tt.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.Write(body[:len(body)/2])
				http.NewResponseController(w).Flush()
				w.Write(body[len(body)/2:])
			})
			c, _ := newDownloadClient(t, "")
			var buf bytes.Buffer
			_, err := c.Download(context.Background(), host.URL+"/v", &buf, WithAllowPrivateHosts(), WithMaxBytes(30<<10))
			require.ErrorIs(t, err, ErrTooLarge)
			require.LessOrEqual(t, buf.Len(), 30<<10)
			if !tt.chunked {
				require.Zero(t, buf.Len(), "nothing written when the announced size is too large")
			}
			require.Len(t, host.requests(), 1, "not retried")
		})
	}
}

func TestDownloadRefusesSchemesAndPrivateHosts(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("secret metadata"), ""))
	c, _ := newDownloadClient(t, "")
	urls := []string{
		"file:///etc/passwd",
		"ftp://example.com/v.mp4",
		"gopher://example.com/",
		"javascript:alert(1)",
		"//example.com/v.mp4",
		"http:///nohost",
		host.URL + "/v", // 127.0.0.1
		"http://localhost:1/v",
		"http://LOCALHOST./v",
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/v",
		"http://192.168.1.1/v",
		"http://[::1]:1/v",
		"http://[fd00::1]/v",
		"http://[::ffff:127.0.0.1]/v",
		"http://0.0.0.0/v",
		"http://100.100.100.200/v",
	}
	// A name that is not "localhost" but resolves to loopback exercises the dial-time check.
	if name := loopbackName(); name != "" {
		urls = append(urls, strings.Replace(host.URL, "127.0.0.1", name, 1)+"/v")
	}
	for _, u := range urls {
		n, err := c.Download(context.Background(), u, io.Discard)
		require.ErrorIs(t, err, ErrHostNotAllowed, u)
		require.Zero(t, n)
	}
	require.Empty(t, host.requests(), "a refused host must not be contacted")

	t.Run("redirect to a refused scheme", func(t *testing.T) {
		redir := newFileHost(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		})
		_, err := c.Download(context.Background(), redir.URL+"/v", io.Discard, WithAllowPrivateHosts())
		require.ErrorIs(t, err, ErrHostNotAllowed)
		require.Len(t, redir.requests(), 1, "not retried")
	})
}

// loopbackName returns a host name other than "localhost" that resolves to a non-public
// address (the machine's own name usually does), or "" when there is none.
func loopbackName() string {
	hostname, err := os.Hostname()
	if err != nil || strings.EqualFold(hostname, "localhost") {
		return ""
	}
	addrs, err := net.LookupHost(hostname)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	for _, s := range addrs {
		if a, err := netip.ParseAddr(s); err != nil || !blockedAddr(a) {
			return ""
		}
	}
	return hostname
}

type downloadRoundTripper func(*http.Request) (*http.Response, error)

func (f downloadRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDownloadAttemptTimeoutResumes(t *testing.T) {
	verifyNoDownloadLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		body := downloadPayload(64 << 10)
		host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 { // half the file, then stall until the client gives up on the attempt
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Header().Set("Accept-Ranges", "bytes")
				w.Write(body[:len(body)/2])
				http.NewResponseController(w).Flush()
				<-r.Context().Done()
				return
			}
			serveFile(body, "")(w, r, n)
		})
		c, _ := newDownloadClient(t, "")
		var buf bytes.Buffer
		_, err := c.Download(context.Background(), host.URL+"/v", &buf, WithAllowPrivateHosts(), WithAttemptTimeout(50*time.Millisecond))
		require.NoError(t, err)
		require.Equal(t, body, buf.Bytes())
		require.Equal(t, "bytes="+strconv.Itoa(len(body)/2)+"-", host.requests()[1].Header.Get("Range"))
	})
}

func TestBlockedAddr(t *testing.T) {
	t.Parallel()
	blocked := []string{"127.0.0.1", "127.8.9.10", "169.254.169.254", "10.1.2.3", "172.16.0.1",
		"192.168.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "100.100.100.200", "::", "::1",
		"fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254"}
	public := []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"}
	for _, s := range blocked {
		require.True(t, blockedAddr(netip.MustParseAddr(s)), s)
		require.ErrorIs(t, dialControl("tcp", net.JoinHostPort(s, "443"), nil), ErrHostNotAllowed, s)
	}
	for _, s := range public {
		require.False(t, blockedAddr(netip.MustParseAddr(s)), s)
		require.NoError(t, dialControl("tcp", net.JoinHostPort(s, "443"), nil), s)
	}
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 10-99/*", 10, -1, true},
		{"bytes 10-99/50", 0, 0, false},
		{"bytes 99-10/100", 0, 0, false},
		{"bytes -1-5/100", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes */100", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		start, total, ok := parseContentRange(tt.in)
		require.Equal(t, tt.ok, ok, tt.in)
		if ok {
			require.Equal(t, tt.start, start, tt.in)
			require.Equal(t, tt.total, total, tt.in)
		}
	}
}

// failAfterWriter accepts limit bytes, then fails.
type failAfterWriter struct {
	n, limit int
}

func (w *failAfterWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.limit {
		return 0, errors.New("disk full")
	}
	w.n += len(p)
	return len(p), nil
}

func TestDownloadWriterFailureIsNotRetried(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile(downloadPayload(200<<10), ""))
	c, sl := newDownloadClient(t, "")
	_, err := c.Download(context.Background(), host.URL+"/v", &failAfterWriter{limit: 64 << 10}, WithAllowPrivateHosts())
	require.ErrorContains(t, err, "disk full")
	require.Len(t, host.requests(), 1)
	require.Empty(t, sl.all())
}

func savableResult(id, video, cover string) *Result {
	return &Result{TaskID: id, VideoURL: video, ImageURL: cover, Code: 200}
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveResultSavesBothAndRerunIsOffline(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video, cover := downloadPayload(400<<10), downloadPayload(30<<10)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/v/abc.mp4":
			serveFile(video, "video/mp4")(w, r, n)
		case "/c/download": // no extension: the Content-Type decides
			serveFile(cover, "image/png")(w, r, n)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	c, _ := newDownloadClient(t, "")
	dir := filepath.Join(t.TempDir(), "out")
	res := savableResult("task-123", host.URL+"/v/abc.mp4?sig=1", host.URL+"/c/download?sig=2")

	var mu sync.Mutex
	var calls [][2]int64
	progress := WithDownloadProgress(func(done, total int64) {
		mu.Lock()
		calls = append(calls, [2]int64{done, total})
		mu.Unlock()
	})
	saved, err := c.SaveResult(context.Background(), res, dir, WithAllowPrivateHosts(), progress)
	require.NoError(t, err)
	require.Equal(t, SavedFiles{
		VideoPath: filepath.Join(dir, "task-123.mp4"),
		ImagePath: filepath.Join(dir, "task-123.cover.png"),
	}, saved)
	got, err := os.ReadFile(saved.VideoPath)
	require.NoError(t, err)
	require.Equal(t, video, got)
	got, err = os.ReadFile(saved.ImagePath)
	require.NoError(t, err)
	require.Equal(t, cover, got)
	require.ElementsMatch(t, []string{"task-123.mp4", "task-123.cover.png"}, dirEntries(t, dir))
	requireMonotonic(t, calls, int64(len(video)+len(cover)))
	require.Len(t, host.requests(), 2)

	var hooked []SavedFiles
	again, err := c.SaveResult(context.Background(), res, dir, WithOnSaved(func(r *Result, s SavedFiles, err error) {
		assert.NoError(t, err)
		hooked = append(hooked, s)
	}))
	require.NoError(t, err)
	require.Equal(t, saved, again)
	require.Equal(t, []SavedFiles{saved}, hooked)
	require.Len(t, host.requests(), 2, "re-run must do no network work")
}

func TestSaveResultInterruptedLeavesNothing(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video := downloadPayload(512 << 10)
	release := make(chan struct{})
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Length", strconv.Itoa(len(video)))
		w.Write(video[:len(video)/2])
		http.NewResponseController(w).Flush()
		select { // hold the rest until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c, _ := newDownloadClient(t, "")
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kill := WithDownloadProgress(func(done, _ int64) {
		if done >= int64(len(video)/4) {
			cancel() // the copy is killed mid-way, with bytes in the temp file
		}
	})
	_, err := c.SaveResult(ctx, savableResult("t1", host.URL+"/v.mp4", ""), dir, WithAllowPrivateHosts(), kill)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, dirEntries(t, dir), "no final file and no temp file")
}

// TestSaveResultBrokenConnectionLeavesNothing is issue 6's atomic save with a failure other
// than cancellation: the file host sends half the body and drops the connection, retries are
// off, so SaveResult fails with the copy half done. The broken file leaves neither its final
// name nor a temp file; the other file, downloaded concurrently, is still saved.
func TestSaveResultBrokenConnectionLeavesNothing(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video, cover := downloadPayload(256<<10), downloadPayload(64<<10)
	halfThenDrop := func(body []byte) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/2])
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler) // closes the connection mid-body
		}
	}
	tests := []struct {
		name      string
		video     func(http.ResponseWriter, *http.Request, int)
		cover     func(http.ResponseWriter, *http.Request, int)
		broken    string
		wantSaved SavedFiles
		wantFiles []string
	}{
		{name: "video (the cover is still saved)", video: halfThenDrop(video), cover: serveFile(cover, ""), broken: "/v.mp4",
			wantSaved: SavedFiles{ImagePath: "t3.cover.jpg"}, wantFiles: []string{"t3.cover.jpg"}},
		{name: "cover, the video saved", video: serveFile(video, ""), cover: halfThenDrop(cover), broken: "/c.jpg",
			wantSaved: SavedFiles{VideoPath: "t3.mp4"}, wantFiles: []string{"t3.mp4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.URL.Path == "/v.mp4" {
					tc.video(w, r, n)
					return
				}
				tc.cover(w, r, n)
			})
			c, sl := newDownloadClient(t, "")
			dir := t.TempDir()
			saved, err := c.SaveResult(context.Background(), savableResult("t3", host.URL+"/v.mp4", host.URL+"/c.jpg"), dir,
				WithAllowPrivateHosts(), WithDownloadRetries(0))
			require.Error(t, err)
			require.NotErrorIs(t, err, context.Canceled)
			require.ErrorContains(t, err, tc.broken, "the error names the broken file")
			want := tc.wantSaved
			for _, f := range []struct {
				path *string
				body []byte
			}{{&want.VideoPath, video}, {&want.ImagePath, cover}} {
				if *f.path != "" {
					*f.path = filepath.Join(dir, *f.path)
					got, err := os.ReadFile(*f.path)
					require.NoError(t, err)
					require.Equal(t, f.body, got)
				}
			}
			require.Equal(t, want, saved)
			require.Equal(t, tc.wantFiles, dirEntries(t, dir), "no final file and no .part file for the broken download")
			require.Empty(t, sl.all(), "no retry")
		})
	}
}

func TestSaveResultFailedCoverKeepsVideo(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video := downloadPayload(10 << 10)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/v.mp4" {
			serveFile(video, "")(w, r, n)
			return
		}
		w.WriteHeader(http.StatusForbidden)
	})
	api := newDownloadURLAPI(t, func() string { return host.URL + "/still-forbidden.jpg?sig=x" })
	c, _ := newDownloadClient(t, api.URL)
	dir := t.TempDir()
	saved, err := c.SaveResult(context.Background(), savableResult("t2", host.URL+"/v.mp4", host.URL+"/c.jpg"), dir, WithAllowPrivateHosts())
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Equal(t, filepath.Join(dir, "t2.mp4"), saved.VideoPath)
	require.Empty(t, saved.ImagePath)
	require.Equal(t, []string{"t2.mp4"}, dirEntries(t, dir))
}

func TestSaveResultRefusesUnsavableResults(t *testing.T) {
	verifyNoDownloadLeaks(t)
	c, _ := newDownloadClient(t, "")
	tests := map[string]*Result{
		"nil":      nil,
		"failed":   {TaskID: "t", Code: 400, Message: "content rejected", VideoURL: "http://example.com/v.mp4"},
		"no video": {TaskID: "t", Code: 200},
		"no id":    {Code: 200, VideoURL: "http://example.com/v.mp4"},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, err := c.SaveResult(context.Background(), r, dir)
			require.Error(t, err)
			require.NoDirExists(t, dir, "nothing written")
		})
	}
	_, err := c.SaveResult(context.Background(), savableResult("t", "http://example.com/v.mp4", ""), "")
	require.Error(t, err)
}

func TestSaveResultHostileTaskID(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("video"), "video/mp4"))
	c, _ := newDownloadClient(t, "")
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	seen := map[string]string{}
	for _, id := range []string{"../../escape", "/etc/passwd", "..", ".", ".hidden", `a\b`, "a/b", "a_b", "ok.id", "日本"} {
		saved, err := c.SaveResult(context.Background(), savableResult(id, host.URL+"/v.mp4", ""), dir, WithAllowPrivateHosts())
		require.NoError(t, err, id)
		require.Equal(t, dir, filepath.Dir(saved.VideoPath), id)
		name := filepath.Base(saved.VideoPath)
		require.False(t, strings.HasPrefix(name, "."), "hidden or relative name %q for %q", name, id)
		if prev, dup := seen[name]; dup {
			t.Fatalf("ids %q and %q share the name %q", prev, id, name)
		}
		seen[name] = id
	}
	require.Equal(t, []string{"out"}, dirEntries(t, root), "nothing written outside dir")
	require.Len(t, dirEntries(t, dir), len(seen))
}

func TestSaveResultFunc(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("video"), ""))
	c, _ := newDownloadClient(t, "")
	dir := t.TempDir()
	fn := c.SaveResultFunc(dir, WithAllowPrivateHosts())
	require.NoError(t, fn(context.Background(), &Result{TaskID: "bad", Code: 400, Message: "failed"}))
	require.Empty(t, dirEntries(t, dir))
	require.NoError(t, fn(context.Background(), savableResult("good", host.URL+"/v.mp4", "")))
	require.Equal(t, []string{"good.mp4"}, dirEntries(t, dir))
	require.Error(t, fn(context.Background(), &Result{TaskID: "novideo", Code: 200}))
}

func TestSaveQueue(t *testing.T) {
	verifyNoDownloadLeaks(t)
	started := make(chan string, 10)
	gate := make(chan struct{})
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		started <- r.URL.Path
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		serveFile([]byte("video "+r.URL.Path), "")(w, r, n)
	})
	c, _ := newDownloadClient(t, "")

	t.Run("full queue refuses, Close drains", func(t *testing.T) {
		dir := t.TempDir()
		var mu sync.Mutex
		var done []string
		q, err := NewSaveQueue(c, dir, 1, 1, WithAllowPrivateHosts(), WithOnSaved(func(r *Result, _ SavedFiles, err error) {
			assert.NoError(t, err)
			mu.Lock()
			done = append(done, r.TaskID)
			mu.Unlock()
		}))
		require.NoError(t, err)
		ctx := context.Background()
		require.NoError(t, q.Enqueue(ctx, savableResult("a", host.URL+"/a.mp4", "")))
		require.Equal(t, "/a.mp4", <-started) // the only worker is busy with a
		require.NoError(t, q.Enqueue(ctx, savableResult("b", host.URL+"/b.mp4", "")))
		require.ErrorIs(t, q.Enqueue(ctx, savableResult("c", host.URL+"/c.mp4", "")), ErrSaveQueueFull)
		require.NoError(t, q.Enqueue(ctx, &Result{TaskID: "f", Code: 500, Message: "failed"}), "failed tasks are skipped")
		require.Error(t, q.Enqueue(ctx, &Result{TaskID: "n", Code: 200}), "nothing to save")

		close(gate)
		require.NoError(t, q.Close(ctx))
		require.Equal(t, "/b.mp4", <-started)
		require.Equal(t, []string{"a", "b"}, done)
		require.ElementsMatch(t, []string{"a.mp4", "b.mp4"}, dirEntries(t, dir))
		require.ErrorIs(t, q.Enqueue(ctx, savableResult("d", host.URL+"/d.mp4", "")), ErrSaveQueueClosed)
		require.NoError(t, q.Close(ctx), "Close twice")
	})

	t.Run("Close with an ended context cancels the saves", func(t *testing.T) {
		blocked := newFileHost(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			started <- r.URL.Path
			<-r.Context().Done()
		})
		dir := t.TempDir()
		q, err := NewSaveQueue(c, dir, 2, 4, WithAllowPrivateHosts())
		require.NoError(t, err)
		require.NoError(t, q.Enqueue(context.Background(), savableResult("x", blocked.URL+"/x.mp4", "")))
		<-started
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, q.Close(ctx), context.Canceled)
		require.Empty(t, dirEntries(t, dir))
	})

	t.Run("bad arguments", func(t *testing.T) {
		_, err := NewSaveQueue(c, t.TempDir(), 0, 1)
		require.Error(t, err)
		_, err = NewSaveQueue(nil, t.TempDir(), 1, 1)
		require.Error(t, err)
		_, err = NewSaveQueue(c, "", 1, 1)
		require.Error(t, err)
	})
}

// benchFileServer serves a 16 MiB file on loopback to a fresh client, and sets b's bytes.
func benchFileServer(b *testing.B) (*Client, *httptest.Server) {
	body := downloadPayload(16 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	b.Cleanup(srv.Close)
	c, err := NewClient(testAPIKey)
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	b.SetBytes(int64(len(body)))
	return c, srv
}

func BenchmarkDownload(b *testing.B) {
	c, srv := benchFileServer(b)
	for b.Loop() {
		if _, err := c.Download(context.Background(), srv.URL+"/v.mp4", io.Discard, WithAllowPrivateHosts()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveResult(b *testing.B) {
	c, srv := benchFileServer(b)
	for i := 0; b.Loop(); i++ {
		r := savableResult("bench-"+strconv.Itoa(i), srv.URL+"/v.mp4", "")
		if _, err := c.SaveResult(context.Background(), r, b.TempDir(), WithAllowPrivateHosts()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDownloadRedactsBadLocationQuery: net/http quotes an unparsable redirect Location in
// its error; the signed query in it never reaches the DownloadError text.
func TestDownloadRedactsBadLocationQuery(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Location", "/a%zz?X-Amz-Signature=SECRET")
		w.WriteHeader(http.StatusFound)
	})
	c, _ := newDownloadClient(t, "")
	_, err := c.Download(context.Background(), host.URL+"/v.mp4?X-Amz-Signature=FIRST", io.Discard,
		WithAllowPrivateHosts(), WithDownloadRetries(0))
	require.Error(t, err)
	require.Contains(t, err.Error(), "Location", "the cause is still told")
	require.NotContains(t, err.Error(), "SECRET")
	require.NotContains(t, err.Error(), "FIRST")
	require.NotContains(t, err.Error(), "X-Amz-Signature")

	for in, want := range map[string]string{
		`failed to parse Location header "/a%zz?X-Amz-Signature=SECRET": parse "/a%zz?X-Amz-Signature=SECRET": bad`: `failed to parse Location header "/a%zz?[redacted]": parse "/a%zz?[redacted]": bad`,
		`"/p?a=\"x y\"&s=SECRET" end`: `"/p?[redacted]" end`,
		`what? no`:                    `what? no`,
		`tail?sig=SECRET`:             `tail?[redacted]`,
	} {
		require.Equal(t, want, redactQueryText(in), in)
	}
	inner := fmt.Errorf("wrapped: %w", ErrHostNotAllowed)
	require.ErrorIs(t, redactQueries(inner), ErrHostNotAllowed, "redaction keeps the chain")
}
