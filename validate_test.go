package runway

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidationRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	okGen := func(mut func(*GenerateRequest)) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error {
			r := GenerateRequest{Prompt: "a cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9}
			mut(&r)
			_, err := c.Generate(ctx, r)
			return err
		}
	}
	okExt := func(mut func(*ExtendRequest)) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error {
			r := ExtendRequest{TaskID: "task-1", Prompt: "more", Quality: Quality720p}
			mut(&r)
			_, err := c.Extend(ctx, r)
			return err
		}
	}
	okAleph := func(mut func(*AlephRequest)) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error {
			r := AlephRequest{Prompt: "snow", VideoURL: "https://example.com/v.mp4"}
			mut(&r)
			_, err := c.GenerateAleph(ctx, r)
			return err
		}
	}
	tests := []struct {
		name      string
		call      func(context.Context, *Client) error
		wantField string // empty: the request is valid and is sent
	}{
		{"generate: prompt required", okGen(func(r *GenerateRequest) { r.Prompt = "" }), "Prompt"},
		{"generate: blank prompt", okGen(func(r *GenerateRequest) { r.Prompt = " \n\t" }), "Prompt"},
		{"generate: 1800 multibyte runes accepted", okGen(func(r *GenerateRequest) { r.Prompt = strings.Repeat("猫", 1800) }), ""},
		{"generate: 1801 runes refused", okGen(func(r *GenerateRequest) { r.Prompt = strings.Repeat("猫", 1801) }), "Prompt"},
		{"generate: 1801 ASCII refused", okGen(func(r *GenerateRequest) { r.Prompt = strings.Repeat("a", 1801) }), "Prompt"},
		{"generate: invalid UTF-8 prompt", okGen(func(r *GenerateRequest) { r.Prompt = "cat \xff" }), "Prompt"},
		{"generate: duration zero", okGen(func(r *GenerateRequest) { r.Duration = 0 }), "Duration"},
		{"generate: duration 8 (old docs)", okGen(func(r *GenerateRequest) { r.Duration = 8 }), "Duration"},
		{"generate: duration 10 with 720p", okGen(func(r *GenerateRequest) { r.Duration = 10 }), ""},
		{"generate: quality missing", okGen(func(r *GenerateRequest) { r.Quality = "" }), "Quality"},
		{"generate: quality 4k", okGen(func(r *GenerateRequest) { r.Quality = "4k" }), "Quality"},
		{"generate: 10 s with 1080p", okGen(func(r *GenerateRequest) { r.Duration, r.Quality = 10, Quality1080p }), "Quality"},
		{"generate: aspect ratio required without image", okGen(func(r *GenerateRequest) { r.AspectRatio = "" }), "AspectRatio"},
		{"generate: aspect ratio optional with image", okGen(func(r *GenerateRequest) { r.AspectRatio, r.ImageURL = "", "https://example.com/i.png" }), ""},
		{"generate: aspect ratio outside the set", okGen(func(r *GenerateRequest) { r.AspectRatio = "2:1" }), "AspectRatio"},
		{"generate: 21:9 is Aleph only", okGen(func(r *GenerateRequest) { r.AspectRatio = AspectRatio21x9 }), "AspectRatio"},
		{"generate: relative image URL", okGen(func(r *GenerateRequest) { r.ImageURL = "/img.png" }), "ImageURL"},
		{"generate: file image URL", okGen(func(r *GenerateRequest) { r.ImageURL = "file:///etc/passwd" }), "ImageURL"},
		{"generate: relative callback URL", okGen(func(r *GenerateRequest) { r.CallBackURL = "callback" }), "CallBackURL"},
		{"generate: javascript callback URL", okGen(func(r *GenerateRequest) { r.CallBackURL = "javascript:alert(1)" }), "CallBackURL"},
		{"extend: task id required", okExt(func(r *ExtendRequest) { r.TaskID = "" }), "TaskID"},
		{"extend: task id with control characters", okExt(func(r *ExtendRequest) { r.TaskID = "a\x00b" }), "TaskID"},
		{"extend: task id too long", okExt(func(r *ExtendRequest) { r.TaskID = strings.Repeat("x", 129) }), "TaskID"},
		{"extend: prompt required", okExt(func(r *ExtendRequest) { r.Prompt = "" }), "Prompt"},
		{"extend: quality required", okExt(func(r *ExtendRequest) { r.Quality = "" }), "Quality"},
		{"extend: bad callback URL", okExt(func(r *ExtendRequest) { r.CallBackURL = "ftp://x/y" }), "CallBackURL"},
		{"aleph: prompt required", okAleph(func(r *AlephRequest) { r.Prompt = "" }), "Prompt"},
		{"aleph: video URL required", okAleph(func(r *AlephRequest) { r.VideoURL = "" }), "VideoURL"},
		{"aleph: relative video URL", okAleph(func(r *AlephRequest) { r.VideoURL = "in.mp4" }), "VideoURL"},
		{"aleph: 21:9 accepted", okAleph(func(r *AlephRequest) { r.AspectRatio = AspectRatio21x9 }), ""},
		{"aleph: aspect ratio outside the set", okAleph(func(r *AlephRequest) { r.AspectRatio = "32:9" }), "AspectRatio"},
		{"aleph: bad reference image", okAleph(func(r *AlephRequest) { r.ReferenceImage = "data:image/png;base64,AA" }), "ReferenceImage"},
		{"aleph: bad callback URL", okAleph(func(r *AlephRequest) { r.CallBackURL = "//host/cb" }), "CallBackURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, replyTaskID("task-ok"))
			err := tt.call(t.Context(), c)
			if tt.wantField == "" {
				require.NoError(t, err)
				require.Equal(t, 1, f.count())
				return
			}
			require.ErrorIs(t, err, ErrInvalidRequest)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tt.wantField, ve.Field)
			require.NotEmpty(t, ve.Reason)
			require.Contains(t, err.Error(), tt.wantField)
			require.Zero(t, f.count(), "nothing may be sent for an invalid request")
		})
	}
}

func TestDefaultCallbackURLIsValidatedWithTheRequest(t *testing.T) {
	t.Parallel()
	c, f := setup(t, replyTaskID("task-ok"), WithCallbackURL("https://hooks.example.com/kie"))
	_, err := c.Generate(t.Context(), GenerateRequest{Prompt: "p", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio1x1, CallBackURL: "nope"})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "CallBackURL", ve.Field, "an explicit bad callback is not silently replaced by the default")
	require.Zero(t, f.count())
}

// FuzzValidTaskID pins validTaskID's ASCII fast path to the rune-by-rune check it skips: both
// accept or both refuse every id.
func FuzzValidTaskID(f *testing.F) {
	for _, s := range []string{"", "ee603959-debb-48d1-98c4-a6d1c717eba6", "a b", "a\tb", "a\x7fb", "a\x00",
		"tâche-1", "id\u00a0x", "id\u200bx", "\xff", "abc\xe2\x80", "~!{}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		fast := validTaskID("id", id)
		slow := validTaskIDRunes("id", id)
		if id == "" || len(id) > maxTaskIDLen {
			return // refused before the characters are looked at
		}
		if (fast == nil) != (slow == nil) {
			t.Fatalf("id %q: fast path %v, rune check %v", id, fast, slow)
		}
	})
}
