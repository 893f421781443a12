package runway

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkRetriedRead is one Credits call that fails once with a 503 and succeeds on the
// retry, on loopback with a 1 ns backoff: the cost of the retry machinery itself.
func BenchmarkRetriedRead(b *testing.B) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 1 {
			reply(w, http.StatusServiceUnavailable, 503, "busy", nil)
			return
		}
		reply(w, 200, 200, "success", 7)
	}))
	b.Cleanup(srv.Close)
	c, err := NewClient(testKey, WithBaseURL(srv.URL), WithRetryBackoff(time.Nanosecond, time.Nanosecond))
	require.NoError(b, err)
	b.Cleanup(c.hc.CloseIdleConnections)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Credits(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
