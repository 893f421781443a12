package runway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// submitBurst is how many tasks the limiter tests submit back to back.
const submitBurst = 100

// submitAgainstLimit submits submitBurst tasks one after another through a client with the
// default submission limiter, to a runwaytest server enforcing Kie's limit on the same fake
// clock (the client's waits advance it at once), and returns the submissions the server saw.
func submitAgainstLimit(tb testing.TB) []runwaytest.Request {
	tb.Helper()
	now, sleep := runway.NewFakeClock(time.Unix(1769670760, 0))
	srv := runwaytest.NewServer(runwaytest.WithClock(now), runwaytest.WithManualSteps(),
		runwaytest.WithRateLimit(runway.DefaultSubmitLimit, runway.DefaultSubmitWindow))
	defer srv.Close()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithHTTPClient(hc))
	require.NoError(tb, err)
	defer func() { _ = c.Close() }()
	runway.SetClientClock(c, now, sleep)

	req := runway.GenerateRequest{Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p,
		AspectRatio: runway.AspectRatio16x9, CallBackURL: "http://127.0.0.1:9/cb"}
	for i := range submitBurst {
		_, err := c.Generate(context.Background(), req)
		require.NoError(tb, err, "submission %d", i)
	}
	var subs []runwaytest.Request
	for _, r := range srv.Requests() {
		if r.Path == runwaytest.PathGenerate {
			subs = append(subs, r)
		}
	}
	return subs
}

// TestSubmitLimiterAgainstRunwaytest: 100 submissions in a row are spread over the windows by
// the client, so the fake, which enforces Kie's 20 per 10 s, answers none of them with 429.
func TestSubmitLimiterAgainstRunwaytest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	subs := submitAgainstLimit(t)
	require.Equal(t, submitBurst, len(subs), "one request per submission: no 429 was retried")
	for i, r := range subs {
		require.Equal(t, http.StatusOK, r.Status, "submission %d", i)
		if i >= runway.DefaultSubmitLimit {
			gap := r.Time.Sub(subs[i-runway.DefaultSubmitLimit].Time)
			require.GreaterOrEqual(t, gap, runway.DefaultSubmitWindow, "submission %d: more than the limit in one window", i)
		}
	}
	span := subs[len(subs)-1].Time.Sub(subs[0].Time)
	require.GreaterOrEqual(t, span, time.Duration(submitBurst/runway.DefaultSubmitLimit-1)*runway.DefaultSubmitWindow)
}

// BenchmarkSubmitLimiter runs the same 100 submissions per op and reports the 429s the fake
// answered (target 0) and the fake seconds the burst took (the limit makes it about 41 s).
func BenchmarkSubmitLimiter(b *testing.B) {
	var subs []runwaytest.Request
	for b.Loop() {
		subs = submitAgainstLimit(b)
	}
	rejected := 0
	for _, r := range subs {
		if r.Status == http.StatusTooManyRequests {
			rejected++
		}
	}
	b.ReportMetric(float64(rejected), "429s")
	b.ReportMetric(subs[len(subs)-1].Time.Sub(subs[0].Time).Seconds(), "fake-s")
}
