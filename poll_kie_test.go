package runway

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of what Kie has been seen to answer beyond its docs, driven through WaitForResult.

// TestWaitForResultLenientTask: a finished task with a failCode, expireFlag or generateTime of
// an undocumented type ends the wait with its classified *TaskError (or its success), never
// with an "unexpected data" *APIError.
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
				assert.ErrorIs(t, err, tt.wantKind.Sentinel())
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
