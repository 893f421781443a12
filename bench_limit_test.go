package runway_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// submitBurst is how many tasks the limiter test submits back to back.
const submitBurst = 100

// TestSubmitLimiterAgainstRunwaytest: 100 submissions in a row through a client with the
// default submission limiter, to a runwaytest server enforcing Kie's limit, are spread over
// the windows by the client, so the fake answers none of them with 429. Both run in a
// synctest bubble on an in-memory network: the burst takes about 41 fake seconds.
func TestSubmitLimiterAgainstRunwaytest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	synctest.Test(t, testSubmitLimiterAgainstRunwaytest)
}

func testSubmitLimiterAgainstRunwaytest(t *testing.T) {
	ln, hc := runway.NewPipeHost()
	srv := runwaytest.NewServer(runwaytest.WithListener(ln), runwaytest.WithManualSteps(),
		runwaytest.WithRateLimit(runway.DefaultSubmitLimit, runway.DefaultSubmitWindow))
	defer srv.Close()
	defer hc.CloseIdleConnections()
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL), runway.WithHTTPClient(hc))
	require.NoError(t, err)
	defer func() { _ = c.Close() }()

	req := runway.GenerateRequest{Prompt: "a cat surfing", Duration: 5, Quality: runway.Quality720p,
		AspectRatio: runway.AspectRatio16x9, CallBackURL: "http://127.0.0.1:9/cb"}
	for i := range submitBurst {
		_, err := c.Generate(context.Background(), req)
		require.NoError(t, err, "submission %d", i)
	}
	var subs []runwaytest.Request
	for _, r := range srv.Requests() {
		if r.Path == runwaytest.PathGenerate {
			subs = append(subs, r)
		}
	}
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
	t.Logf("%d submissions, 0 answered 429, spread over %s of fake time", len(subs), span)
}
