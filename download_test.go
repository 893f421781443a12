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
				assert.NotContains(t, v, testKey, "API key reached the file host in %s", name)
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
		assert.Equal(t, "Bearer "+testKey, r.Header.Get("Authorization"))
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

// TestDownloadPlainSendsNoCredentials pins DL-2 of SECURITY.md.
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

// TestDownloadReusesConnections: the download client is built once per Client, so a second
// download from the same host reuses the first one's connection, with the host check on (a
// public address, dialled through the checked dialer's test seam) and with
// WithAllowPrivateHosts. Before, each download cloned the transport and dialled anew.
func TestDownloadReusesConnections(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(64 << 10)
	files, newConns := newConnCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveFile(body, "video/mp4")(w, r, 0)
	}))

	// Real sockets: the connection count is what is measured, so no in-memory network here.
	c := newTestClient(t, WithHTTPClient(&http.Client{Transport: &http.Transport{}}))
	var d net.Dialer
	c.dlHooks.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, files.Listener.Addr().String())
	}
	_, port, err := net.SplitHostPort(files.Listener.Addr().String())
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		url  string
		opts []DownloadOption
	}{
		{"checked", "http://93.184.215.14:" + port + "/v.mp4", nil},
		{"private hosts allowed", files.URL + "/v.mp4", []DownloadOption{WithAllowPrivateHosts()}},
	} {
		for i := range 2 {
			var buf bytes.Buffer
			_, err := c.Download(context.Background(), tc.url, &buf, tc.opts...)
			require.NoError(t, err, tc.name)
			require.Equal(t, body, buf.Bytes(), tc.name)
			want := 0
			if i == 0 {
				want = 1
			}
			require.Equal(t, want, newConns(), "%s: download %d", tc.name, i+1)
		}
	}
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

// TestDownloadDetectsLengthMismatch pins DL-5 of SECURITY.md.
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

// TestDownloadRefreshesExpiredLink: a refused (expired) link is refreshed once through
// download-url, and, for CL-15, with debug logging on neither the refreshed link's signed
// query nor the API key reaches the logs or the error.
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
			for _, secret := range []string{"SECRET", "sig=", testKey} {
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

// TestDownloadSizeCap pins DL-3 of SECURITY.md.
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

// TestDownloadAttemptTimeoutResumes pins DL-4 of SECURITY.md.
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

// benchFileServer serves a 16 MiB file on loopback to a fresh client, and sets b's bytes.
func benchFileServer(b *testing.B) (*Client, *httptest.Server) {
	body := downloadPayload(16 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	b.Cleanup(srv.Close)
	c, err := NewClient(testKey)
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

// TestDownloadRedactsBadLocationQuery: net/http quotes an unparsable redirect Location in
// its error; the signed query in it never reaches the DownloadError text.
// Pins DL-6 of SECURITY.md.
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
		`failed to parse Location header "/a%zz?X-Amz-Signature=SECRET": parse "/a%zz?X-Amz-Signature=SECRET": bad`: `failed to parse Location header "/a%zz?[REDACTED]": parse "/a%zz?[REDACTED]": bad`,
		`"/p?a=\"x y\"&s=SECRET" end`: `"/p?[REDACTED]" end`,
		`what? no`:                    `what? no`,
		`tail?sig=SECRET`:             `tail?[REDACTED]`,
	} {
		require.Equal(t, want, redactQueryText(in), in)
	}
	inner := fmt.Errorf("wrapped: %w", ErrHostNotAllowed)
	require.ErrorIs(t, redactQueries(inner), ErrHostNotAllowed, "redaction keeps the chain")
}
