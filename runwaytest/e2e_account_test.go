package runwaytest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// TestE2EAccountErrors: a wrong API key and an empty balance are refusals with their class,
// whether the API answers them as HTTP 200 with the code in the body (Kie's quirk) or with the
// code as HTTP status; neither is mistaken for an unknown submission outcome, and a wait with
// a wrong key ends at once instead of polling until its timeout.
func TestE2EAccountErrors(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		opts []runwaytest.Option
	}{
		{"HTTP 200 with body code", nil},
		{"HTTP status", []runwaytest.Option{runwaytest.WithHTTPStatusErrors()}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			e := newE2E(t, mode.opts, nil)
			id := e.submit(t, ctx, "a cat", runwaytest.Script{Steps: manual})

			wrong, err := runway.NewClient("not-the-key", runway.WithBaseURL(e.srv.URL), runway.WithSubmitRateLimit(0, 0))
			require.NoError(t, err)
			t.Cleanup(func() { _ = wrong.Close() })
			_, err = wrong.Generate(ctx, e2eRequest("a dog", e.cbURL))
			assert.ErrorIs(t, err, runway.ErrUnauthorized)
			assert.NotErrorIs(t, err, runway.ErrOutcomeUnknown)
			res, err := wrong.WaitForResult(ctx, id, secondPolls)
			assert.Nil(t, res)
			var we *runway.WaitError
			require.ErrorAs(t, err, &we)
			assert.ErrorIs(t, err, runway.ErrUnauthorized)
			assert.NotContains(t, err.Error(), "not-the-key")

			e.srv.SetCredits(0)
			_, err = e.c.Generate(ctx, e2eRequest("a bird", e.cbURL))
			assert.ErrorIs(t, err, runway.ErrInsufficientCredits)
			assert.NotErrorIs(t, err, runway.ErrOutcomeUnknown)
			assert.Len(t, e.srv.Tasks(), 1, "refused submissions create nothing")
		})
	}
}
