package runway

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of what Kie has been seen to answer beyond its docs, driven through WaitForResult.

// TestWaitForResultLenientTask: a finished task with a failCode, expireFlag or generateTime of
// an undocumented type ends the wait with its classified *TaskError (or its success), never
// with an "unexpected data" *APIError.
// Pins CL-11 of SECURITY.md.
func TestWaitForResultLenientTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture  string
		aleph    bool
		wantKind ErrorKind // "" means success
		codeText string
	}{
		{fixture: "record_detail_fail_text_code.json", wantKind: KindModeration, codeText: "E_MODERATION"},
		{fixture: "record_detail_fail_null_code.json", wantKind: KindFormat},
		{fixture: "record_detail_fail_empty_code.json", wantKind: KindConcurrency},
		{fixture: "record_detail_fail_string.json", wantKind: KindConcurrency},
		{fixture: "record_detail_success_stray_code.json"},
		{fixture: "aleph_failed_text_code.json", aleph: true, wantKind: KindModeration, codeText: "E_NSFW"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", tt.fixture))
			require.NoError(t, err)
			synctest.Test(t, func(t *testing.T) {
				api := newPollAPI(t).script("t1", pollReply{body: string(body)})
				c := newPollClient(t, api)
				var opts []WaitOption
				if tt.aleph {
					opts = append(opts, WithAleph())
				}
				res, err := c.WaitForResult(t.Context(), "t1", opts...)
				require.NotNil(t, res)
				var ae *APIError
				require.False(t, errors.As(err, &ae), "no APIError: %v", err)
				if tt.wantKind == "" {
					require.NoError(t, err)
					assert.Equal(t, 200, res.Code, "the state decides, not the stray failCode")
					return
				}
				var te *TaskError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, tt.wantKind, te.Kind)
				assert.ErrorIs(t, err, tt.wantKind.sentinel())
				assert.Equal(t, tt.codeText, te.CodeText)
				assert.Equal(t, tt.codeText, res.CodeText)
				if tt.codeText != "" {
					assert.Zero(t, te.Code, "a textual code has no number")
					assert.Contains(t, err.Error(), tt.codeText)
				}
				assert.Equal(t, 1, api.gets())
			})
		})
	}
}

// notFoundForms are the four ways Kie answers a task id it does not (yet) know.
var notFoundForms = []struct {
	name  string
	reply pollReply
}{
	{"HTTP 404", pollEnvelopeReply(404, 404, "Task not found")},
	{"body code 404", pollEnvelopeReply(200, 404, "Task not found")},
	{"body code 422 record does not exist", pollEnvelopeReply(200, 422, "The record does not exist")},
	{"code 200 data null", pollReply{body: `{"code":200,"msg":"success","data":null}`}},
}

// TestGetTaskNotFoundForms: every spelling of "not found" matches ErrNotFound (and nothing
// else) on both details endpoints; a 422 with any other message stays a validation error.
func TestGetTaskNotFoundForms(t *testing.T) {
	t.Parallel()
	forms := append(notFoundForms[:len(notFoundForms):len(notFoundForms)],
		struct {
			name  string
			reply pollReply
		}{"422 other case and punctuation", pollEnvelopeReply(200, 422, "  the RECORD does not exist!")},
		struct {
			name  string
			reply pollReply
		}{"code 200 data missing", pollReply{body: `{"code":200,"msg":"success"}`}},
	)
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			api := newPollAPI(t).script("", f.reply)
			c := newPollClient(t, api, WithMaxRetries(0))
			_, err := c.GetTask(t.Context(), "nope")
			require.ErrorIs(t, err, ErrNotFound)
			assert.NotErrorIs(t, err, ErrValidation)
			_, err = c.GetAlephTask(t.Context(), "nope")
			require.ErrorIs(t, err, ErrNotFound)
			assert.NotErrorIs(t, err, ErrValidation)
		})
	}
	t.Run("other 422 stays validation", func(t *testing.T) {
		t.Parallel()
		api := newPollAPI(t).script("", pollEnvelopeReply(200, 422, "taskId is required"))
		c := newPollClient(t, api, WithMaxRetries(0))
		_, err := c.GetTask(t.Context(), "x")
		require.ErrorIs(t, err, ErrValidation)
		assert.NotErrorIs(t, err, ErrNotFound)
	})
}

// TestSubmissionRecordMissing422StaysValidation: the 422-as-not-found reading is only for the
// details lookups; a submission answered 422 with that text is a validation error.
func TestSubmissionRecordMissing422StaysValidation(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"code":422,"msg":"The record does not exist","data":null}`)
	})
	_, err := c.Extend(t.Context(), ExtendRequest{TaskID: "t", Prompt: "p", Quality: Quality720p})
	require.ErrorIs(t, err, ErrValidation)
	assert.NotErrorIs(t, err, ErrNotFound)
}

// TestWaitForResultNotFoundForms: each spelling gets the same one-minute grace. A task that
// appears within it is waited for; one that never does ends the wait with ErrNotFound once
// the grace is over; a wait timeout shorter than the grace keeps the not-found as its cause.
// Pins CL-13 of SECURITY.md.
func TestWaitForResultNotFoundForms(t *testing.T) {
	t.Parallel()
	for _, f := range notFoundForms {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			t.Run("appears within the grace", func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					nf := f.reply
					api := newPollAPI(t).script("new", nf, nf, pollStateReply("new", StateQueueing), pollSuccessReply("new"))
					c := newPollClient(t, api)
					res, err := c.WaitForResult(t.Context(), "new", WithPollInterval(testInterval))
					require.NoError(t, err)
					assert.Equal(t, SourcePoll, res.Source)
					assert.Equal(t, 4, api.gets())
				})
			})
			t.Run("grace expires", func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					api := newPollAPI(t).script("gone", f.reply)
					c := newPollClient(t, api)
					start := time.Now()
					_, err := c.WaitForResult(t.Context(), "gone", WithPollInterval(testInterval))
					require.ErrorIs(t, err, ErrNotFound)
					assert.NotErrorIs(t, err, ErrWaitTimeout)
					var we *WaitError
					require.ErrorAs(t, err, &we)
					assert.GreaterOrEqual(t, time.Since(start), notFoundGrace)
					assert.Greater(t, api.gets(), 2, "polled again during the grace")
					assert.Contains(t, err.Error(), "not found")
				})
			})
			t.Run("wait timeout inside the grace", func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					api := newPollAPI(t).script("young", f.reply)
					c := newPollClient(t, api)
					_, err := c.WaitForResult(t.Context(), "young", WithPollInterval(time.Second), WithWaitTimeout(10*time.Second))
					require.ErrorIs(t, err, ErrWaitTimeout)
					require.ErrorIs(t, err, ErrNotFound, "the last poll error is kept as the cause")
					var we *WaitError
					require.ErrorAs(t, err, &we)
					require.Error(t, we.LastErr)
					var ae *APIError
					require.ErrorAs(t, err, &ae, "the last poll's APIError is reachable")
					assert.Contains(t, err.Error(), "(not found)")
					assert.NotContains(t, err.Error(), "last state unknown")
					assert.Equal(t, 1, strings.Count(err.Error(), "runway:"), err.Error())
				})
			})
		})
	}
}
