package runwaytest_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// TestE2ESubmitRateLimit: a burst of concurrent submissions against the fake's account limit
// (Kie's 20 per 10 s, scaled down). With the client's limiter on no submission meets a 429;
// without it the 429s carry Retry-After and the client's retries get every submission
// through. Either way each submission creates exactly one task.
func TestE2ESubmitRateLimit(t *testing.T) {
	t.Parallel()
	const limit, window, burst = 3, 100 * time.Millisecond, 8
	tests := []struct {
		name     string
		opts     []runway.Option
		want429s bool
	}{
		// The fake measures its window at arrival, the limiter at the start of each request:
		// the client's window (plus its 250 ms margin) is 650 ms longer than the fake's, so
		// that the test does not depend on how fast a loaded machine delivers requests.
		{name: "client limiter on", opts: []runway.Option{runway.WithSubmitRateLimit(limit, 5*window)}},
		{name: "client limiter off, Retry-After honoured", want429s: true, opts: []runway.Option{
			runway.WithRetryBackoff(10*time.Millisecond, 2*time.Second), runway.WithMaxRetries(burst)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, []runwaytest.Option{runwaytest.WithRateLimit(limit, window)}, tt.opts)
			ids := make([]string, burst)
			errs := make([]error, burst)
			var wg sync.WaitGroup
			for i := range burst {
				wg.Go(func() {
					ids[i], errs[i] = e.c.Generate(ctx, e2eRequest(fmt.Sprintf("burst %d", i), e.cbURL))
				})
			}
			wg.Wait()
			for i := range burst {
				require.NoError(t, errs[i], "submission %d", i)
			}
			assert.Len(t, e.srv.Tasks(), burst, "one task per submission")
			var limited int
			for _, r := range e.srv.Requests() {
				if r.Path == runwaytest.PathGenerate && r.Status == http.StatusTooManyRequests {
					limited++
					assert.Equal(t, 429, r.Code)
				}
			}
			if tt.want429s {
				assert.Positive(t, limited)
			} else {
				assert.Zero(t, limited, "the limiter keeps the client under the account limit")
			}
			require.NoError(t, e.srv.WaitIdle(ctx))
			for _, id := range ids {
				assert.Equal(t, 1, e.callsFor(id))
			}
		})
	}
}
