package runway

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// TestWaitForResultCapsRetryAfter: a Retry-After of a day, with no wait timeout, delays the
// next poll by at most maxPollRetryAfter.
// Pins CL-4 of SECURITY.md.
func TestWaitForResultCapsRetryAfter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		busy := withRetryAfter(pollEnvelopeReply(429, 429, "Too many requests"), "86400")
		api := newPollAPI(t).script("ra", busy, pollSuccessReply("ra"))
		c := newPollClient(t, api)
		res, err := c.WaitForResult(t.Context(), "ra", WithPollInterval(testInterval), WithWaitTimeout(0))
		require.NoError(t, err)
		require.Equal(t, SourcePoll, res.Source)
		ds := gaps(api.getTimes("ra"))
		require.Len(t, ds, 1)
		require.Equal(t, maxPollRetryAfter, ds[0])
	})
}
