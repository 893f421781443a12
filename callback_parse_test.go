package runway

import (
	"embed"
	"encoding/json"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

//go:embed testdata/callbacks/*.json
var callbackFixtures embed.FS

// TestParseCallbackFixtures decodes every callback example body Kie documents (generation,
// extension and Aleph callbacks, success and failure; testdata/) to its typed result and class.
// Pins CB-9 of SECURITY.md.
func TestParseCallbackFixtures(t *testing.T) {
	t.Parallel()
	const id = "ee603959-debb-48d1-98c4-a6d1c717eba6"
	tests := []struct {
		file      string
		want      Result // Source and Raw are checked separately
		wantAleph bool
		wantKind  ErrorKind // empty means success
	}{
		{file: "generate_success.json", want: Result{TaskID: id, VideoID: "485da89c-7fca-4340-8c04-101025b2ae71",
			VideoURL: "https://file.com/k/xxxxxxx.mp4", ImageURL: "https://file.com/m/xxxxxxxx.png", Code: 200, Message: "All generated successfully."}},
		{file: "generate_failure.json", want: Result{TaskID: id, Code: 400,
			Message: "Inappropriate content detected. Please replace the image or video."}, wantKind: KindModeration},
		{file: "extend_success.json", want: Result{TaskID: id, VideoID: "485da89c-7fca-4340-8c04-101025b2ae71",
			VideoURL: "https://file.com/k/xxxxxxx.mp4", ImageURL: "https://file.com/m/xxxxxxxx.png", Code: 200, Message: "All generated successfully."}},
		{file: "extend_failure.json", want: Result{TaskID: id, Code: 400, Message: "Get image info failed."}, wantKind: KindFormat},
		{file: "aleph_success.json", want: Result{TaskID: id, VideoURL: "https://file.com/k/xxxxxxx.mp4",
			ImageURL: "https://file.com/m/xxxxxxxx.png", Code: 200, Message: "success"}, wantAleph: true},
		{file: "aleph_error.json", want: Result{TaskID: id, Code: 400,
			Message: "Your prompt was caught by our AI moderator. Please adjust it and try again!"}, wantAleph: true, wantKind: KindModeration},
		{file: "webhook_signed.json", want: Result{TaskID: "ee9c2715375b7837f8bb51d641ff5863", Code: 200, Message: "Success"}},
	}
	entries, err := callbackFixtures.ReadDir("testdata/callbacks")
	require.NoError(t, err)
	require.Len(t, entries, len(tests), "every fixture has a row")
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			body, err := callbackFixtures.ReadFile(path.Join("testdata/callbacks", tc.file))
			require.NoError(t, err)

			r, aleph, err := parseCallback(body)
			require.NoError(t, err)
			require.Equal(t, tc.wantAleph, aleph)
			require.Equal(t, SourceCallback, r.Source)
			require.JSONEq(t, string(body), string(r.Raw))
			got := *r
			got.Source, got.Raw = "", nil
			require.Equal(t, tc.want, got)

			pub, err := ParseCallback(body)
			require.NoError(t, err)
			require.Equal(t, r.TaskID, pub.TaskID)

			if tc.wantKind == "" {
				require.NoError(t, r.Err())
				return
			}
			var te *TaskError
			require.ErrorAs(t, r.Err(), &te)
			require.Equal(t, tc.wantKind, te.Kind)
			require.Equal(t, tc.want.Message, te.Message)
			require.ErrorIs(t, r.Err(), ErrTaskFailed)
			require.ErrorIs(t, r.Err(), tc.wantKind.sentinel())
		})
	}
}

// TestParseCallbackDocumentedMessages: each failure message listed for the callbacks
// (the ten of the extension callback's list, plus the lowercase OpenAPI variant) arrives in a callback and is
// classified, never left unknown.
func TestParseCallbackDocumentedMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg  string
		kind ErrorKind
	}{
		{"Get image info failed", KindFormat},
		{"get image info failed.", KindFormat},
		{"Inappropriate content detected. Please replace the image or video", KindModeration},
		{"Incorrect image format", KindFormat},
		{"Please try again later. You can upgrade to Standard membership to start generating now", KindQuota},
		{"Reached the limit for concurrent generations", KindConcurrency},
		{"Unsupported width or height. Please adjust the size and try again", KindSize},
		{"Upload failed due to network reasons, please re-enter", KindTransient},
		{"Your prompt was caught by our AI moderator. Please adjust it and try again!", KindModeration},
		{"Your prompt/negative prompt cannot exceed 2048 characters. Please check if your input is too long", KindInput},
		{"Your video creation prompt contains NSFW content, which isn't allowed under our policy. Kindly revise your prompt and generate again", KindModeration},
	}
	for _, tc := range tests {
		body, err := json.Marshal(map[string]any{"code": 400, "msg": tc.msg, "data": map[string]string{"task_id": "t1"}})
		require.NoError(t, err)
		r, err := ParseCallback(body)
		require.NoError(t, err)
		var te *TaskError
		require.ErrorAs(t, r.Err(), &te, tc.msg)
		require.Equal(t, tc.kind, te.Kind, tc.msg)
	}
	r, err := ParseCallback([]byte(`{"code":500,"msg":"internal error","data":{"task_id":"t1"}}`))
	require.NoError(t, err)
	require.ErrorIs(t, r.Err(), ErrServer)
}

// TestParseCallbackErrors: refusals are *CallbackError, match ErrInvalidCallback, name the
// field and never echo the untrusted value.
// Pins CB-7 of SECURITY.md.
func TestParseCallbackErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body, field string
	}{
		{`{"code":"200","data":{"task_id":"t1"}}`, "code"},
		{`{"code":2e308,"data":{"task_id":"t1"}}`, "code"},
		{`{"code":99,"data":{"task_id":"t1"}}`, "code"},
		{`{"code":1000,"data":{"task_id":"t1"}}`, "code"},
		{`{"code":200,"data":{"task_id":123}}`, "data.task_id"},
		{`{"code":200,"data":{"task_id":"SECRET\u0000"}}`, "data.task_id"},
		{`{"code":200,"taskId":"SECRET\u0007"}`, "taskId"},
		{`{"code":200,"data":[]}`, "data"},
		{`{"code":200,"msg":{}}`, "msg"},
		{`[1]`, ""},
		{`{"code":200,"data":{"task_id":"t1"}} x`, ""},
	}
	for _, tc := range tests {
		_, err := ParseCallback([]byte(tc.body))
		require.ErrorIs(t, err, ErrInvalidCallback, tc.body)
		var ce *CallbackError
		require.ErrorAs(t, err, &ce, tc.body)
		require.Equal(t, tc.field, ce.Field, tc.body)
		require.NotContains(t, err.Error(), "SECRET", tc.body)
	}
	var se *json.SyntaxError
	_, err := ParseCallback([]byte(`{"code":`))
	require.True(t, errors.As(err, &se), "the decode error is kept")
}

// TestParseCallbackRawIsACopy: the caller may reuse its buffer.
func TestParseCallbackRawIsACopy(t *testing.T) {
	t.Parallel()
	body := []byte(runwayBody("t1", 200, "ok"))
	r, err := ParseCallback(body)
	require.NoError(t, err)
	copy(body, strings.Repeat("x", len(body)))
	require.Equal(t, runwayBody("t1", 200, "ok"), string(r.Raw))
}

// FuzzParseCallback: no panic; a successful parse has a valid task id and round-trips: the
// result re-encoded in its shape parses to the same result.
// Pins CB-5, CB-7 of SECURITY.md.
func FuzzParseCallback(f *testing.F) {
	entries, err := callbackFixtures.ReadDir("testdata/callbacks")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := callbackFixtures.ReadFile(path.Join("testdata/callbacks", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, aleph, err := parseCallback(body)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidCallback)
			require.Nil(t, r)
			return
		}
		require.NoError(t, validTaskID("task id", r.TaskID))
		require.Equal(t, string(body), string(r.Raw))
		require.Equal(t, SourceCallback, r.Source)
		require.GreaterOrEqual(t, r.Code, 100)
		require.LessOrEqual(t, r.Code, 999)

		again, againAleph, err := parseCallback(reencode(t, r, aleph))
		require.NoError(t, err)
		require.Equal(t, aleph, againAleph)
		require.Equal(t, r.TaskID, again.TaskID)
		require.Equal(t, r.Code, again.Code)
		require.Equal(t, r.Message, again.Message)
		require.Equal(t, r.VideoURL, again.VideoURL)
		require.Equal(t, r.ImageURL, again.ImageURL)
		if !aleph {
			require.Equal(t, r.VideoID, again.VideoID)
		}
	})
}

// reencode writes r as a callback body of the given shape.
func reencode(t *testing.T, r *Result, aleph bool) []byte {
	var v any
	if aleph {
		v = map[string]any{"code": r.Code, "msg": r.Message, "taskId": r.TaskID,
			"data": map[string]string{"result_video_url": r.VideoURL, "result_image_url": r.ImageURL}}
	} else {
		v = map[string]any{"code": r.Code, "msg": r.Message, "data": map[string]string{
			"task_id": r.TaskID, "video_id": r.VideoID, "video_url": r.VideoURL, "image_url": r.ImageURL}}
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
