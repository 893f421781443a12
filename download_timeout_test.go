package runway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// trickleHandler announces a 1 GiB file and sends one byte every 10 s, honouring Range, so
// every attempt makes progress and the retry count never runs out.
func trickleHandler(w http.ResponseWriter, r *http.Request) {
	const total = 1 << 30
	start := int64(0)
	if v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
		start, _ = strconv.ParseInt(strings.TrimSuffix(v, "-"), 10, 64)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, total-1, total))
		w.Header().Set("Content-Length", strconv.FormatInt(total-start, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(total))
		w.Header().Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
	}
	rc := http.NewResponseController(w)
	for {
		if _, err := w.Write([]byte{'x'}); err != nil {
			return
		}
		rc.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// startTrickleHost serves trickleHandler on an in-memory listener inside the current
// synctest bubble and returns a client whose transport dials it. Downloads need
// WithAllowPrivateHosts (the caller's dialer is kept only then).
func startTrickleHost(t *testing.T, extra ...Option) *Client {
	t.Helper()
	l := newPipeNet()
	srv := &http.Server{Handler: http.HandlerFunc(trickleHandler)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	tr := &http.Transport{DialContext: l.DialContext}
	return newTestClient(t, append([]Option{WithHTTPClient(&http.Client{Transport: tr})}, extra...)...)
}

// TestDownloadOverallTimeoutStopsTrickle is DL-4: a host that trickles bytes
// makes every attempt progress, which resets the retry count, so before the overall bound
// only ctx could end the download. Now Download ends at DefaultDownloadTimeout (the default,
// no option given) or at WithDownloadTimeout, with an error matching ErrDownloadTimeout and
// context.DeadlineExceeded.
func TestDownloadOverallTimeoutStopsTrickle(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []DownloadOption
		want time.Duration
	}{
		{"default", nil, DefaultDownloadTimeout},
		{"WithDownloadTimeout", []DownloadOption{WithDownloadTimeout(12 * time.Minute)}, 12 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := startTrickleHost(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				type outcome struct {
					n   int64
					err error
				}
				done := make(chan outcome, 1)
				start := time.Now()
				go func() {
					n, err := c.Download(ctx, "http://files.example.com/v.mp4", io.Discard,
						append([]DownloadOption{WithAllowPrivateHosts()}, tc.opts...)...)
					done <- outcome{n, err}
				}()
				select {
				case o := <-done:
					require.Equal(t, tc.want, time.Since(start), "ended by the overall bound, to the tick")
					require.ErrorIs(t, o.err, ErrDownloadTimeout)
					require.ErrorIs(t, o.err, context.DeadlineExceeded)
					var de *DownloadError
					require.ErrorAs(t, o.err, &de)
					require.Positive(t, o.n, "bytes did arrive: the host was slow, not dead")
				case <-time.After(tc.want + time.Hour): // fake time: the bubble's clock
					cancel()
					<-done
					t.Fatalf("the download was still running %s after start", tc.want+time.Hour)
				}
			})
		})
	}
}

// TestDownloadOptionsRefuseImpossibleValues applies the options rule to downloads: values that
// cannot work are errors matching ErrInvalidRequest that name the option (several, one per
// line), never silently the default; nothing is fetched. WithOnSaved means nothing to
// Download, so it is refused there. SaveResultFunc, which returns no error, panics.
func TestDownloadOptionsRefuseImpossibleValues(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("video"), "video/mp4"))
	c, _ := newDownloadClient(t, "")
	bad := map[string]DownloadOption{
		"WithMaxBytes":         WithMaxBytes(0),
		"WithDownloadRetries":  WithDownloadRetries(-1),
		"WithAttemptTimeout":   WithAttemptTimeout(-time.Second),
		"WithDownloadTimeout":  WithDownloadTimeout(-time.Second),
		"WithDownloadProgress": WithDownloadProgress(nil),
		"WithOnSaved":          WithOnSaved(nil),
	}
	calls := map[string]func(opts ...DownloadOption) error{
		"Download": func(opts ...DownloadOption) error {
			_, err := c.Download(context.Background(), host.URL+"/v.mp4", io.Discard, opts...)
			return err
		},
		"SaveResult": func(opts ...DownloadOption) error {
			_, err := c.SaveResult(context.Background(), savableResult("t", host.URL+"/v.mp4", ""), t.TempDir(), opts...)
			return err
		},
		"NewSaveQueue": func(opts ...DownloadOption) error {
			q, err := NewSaveQueue(c, t.TempDir(), 1, 1, opts...)
			if err == nil {
				q.Close(context.Background())
			}
			return err
		},
	}
	for call, fn := range calls {
		for name, opt := range bad {
			err := fn(WithAllowPrivateHosts(), opt)
			require.ErrorIs(t, err, ErrInvalidRequest, "%s with %s", call, name)
			require.ErrorContains(t, err, name+":", call)
		}
		err := fn(WithMaxBytes(-5), WithDownloadRetries(-1))
		require.ErrorIs(t, err, ErrInvalidRequest)
		require.Equal(t, 1, strings.Count(err.Error(), "\n"), "one bad option per line: %q", err)
	}
	for name, opt := range bad {
		msg := panicText(func() { c.SaveResultFunc(t.TempDir(), WithAllowPrivateHosts(), opt) })
		require.Contains(t, msg, "runway: SaveResultFunc: invalid options: "+name+":")
	}
	_, err := c.Download(context.Background(), host.URL+"/v.mp4", io.Discard, WithAllowPrivateHosts(),
		WithOnSaved(func(*Result, SavedFiles, error) {}))
	require.ErrorIs(t, err, ErrInvalidRequest)
	require.ErrorContains(t, err, "WithOnSaved")
	require.Empty(t, host.requests(), "nothing fetched with invalid options")

	// The documented zeros keep their meaning.
	n, err := c.Download(context.Background(), host.URL+"/v.mp4", io.Discard, WithAllowPrivateHosts(),
		WithDownloadRetries(0), WithAttemptTimeout(0), WithDownloadTimeout(0))
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
}

// discardLogger keeps a test's expected failures out of the default logger.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// panicText runs fn and returns what it panicked with, as text ("" if it did not).
func panicText(fn func()) (text string) {
	defer func() {
		if v := recover(); v != nil {
			text = fmt.Sprint(v)
		}
	}()
	fn()
	return ""
}
