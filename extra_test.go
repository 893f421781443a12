package runway

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExtraFieldsOnTheWire: Extra's fields follow the modeled ones, in key order, byte for
// byte, on every submission endpoint.
func TestExtraFieldsOnTheWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		call func(context.Context, *Client) (string, error)
		want string
	}{
		{
			name: "generate with model",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Generate(ctx, GenerateRequest{Prompt: "cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9,
					Extra: map[string]any{"model": "runway-duration-5-generate", "expandPrompt": true, "nested": map[string]int{"n": 1}}})
			},
			want: `{"prompt":"cat","duration":5,"quality":"720p","aspectRatio":"16:9","waterMark":"",` +
				`"expandPrompt":true,"model":"runway-duration-5-generate","nested":{"n":1}}`,
		},
		{
			name: "extend with the older docs' fields",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Extend(ctx, ExtendRequest{TaskID: "t1", Prompt: "more", Quality: Quality720p,
					Extra: map[string]any{"expandPrompt": false, "imageUrl": "https://example.com/frame.png"}})
			},
			want: `{"taskId":"t1","prompt":"more","quality":"720p","waterMark":"","expandPrompt":false,"imageUrl":"https://example.com/frame.png"}`,
		},
		{
			name: "aleph",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.GenerateAleph(ctx, AlephRequest{Prompt: "snow", VideoURL: "https://example.com/in.mp4",
					Extra: map[string]any{"quality": "hd"}})
			},
			want: `{"prompt":"snow","videoUrl":"https://example.com/in.mp4","waterMark":"","uploadCn":false,"quality":"hd"}`,
		},
		{
			name: "empty Extra changes nothing",
			call: func(ctx context.Context, c *Client) (string, error) {
				return c.Generate(ctx, GenerateRequest{Prompt: "cat", Duration: 10, Quality: Quality720p, AspectRatio: AspectRatio1x1,
					Extra: map[string]any{}})
			},
			want: `{"prompt":"cat","duration":10,"quality":"720p","aspectRatio":"1:1","waterMark":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, replyTaskID("task-1"))
			_, err := tt.call(t.Context(), c)
			require.NoError(t, err)
			reqs := f.requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tt.want, string(reqs[0].Body), "exact bytes on the wire")
		})
	}
}

// TestExtraFieldsNeverOverride: an extra field that names a modeled one (in any case), an
// empty name or a value encoding/json refuses is a local *ValidationError; nothing is sent.
func TestExtraFieldsNeverOverride(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		call func(context.Context, *Client) (string, error)
	}{
		{"generate prompt", func(ctx context.Context, c *Client) (string, error) {
			return c.Generate(ctx, GenerateRequest{Prompt: "cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9,
				Extra: map[string]any{"prompt": "other"}})
		}},
		{"generate omitted imageUrl", func(ctx context.Context, c *Client) (string, error) {
			return c.Generate(ctx, GenerateRequest{Prompt: "cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9,
				Extra: map[string]any{"imageUrl": "https://example.com/i.png"}})
		}},
		{"generate other case", func(ctx context.Context, c *Client) (string, error) {
			return c.Generate(ctx, GenerateRequest{Prompt: "cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9,
				Extra: map[string]any{"CallBackUrl": "https://evil.example.com"}})
		}},
		{"generate empty name", func(ctx context.Context, c *Client) (string, error) {
			return c.Generate(ctx, GenerateRequest{Prompt: "cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9,
				Extra: map[string]any{" ": 1}})
		}},
		{"generate unencodable", func(ctx context.Context, c *Client) (string, error) {
			return c.Generate(ctx, GenerateRequest{Prompt: "cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9,
				Extra: map[string]any{"f": func() {}}})
		}},
		{"extend taskId", func(ctx context.Context, c *Client) (string, error) {
			return c.Extend(ctx, ExtendRequest{TaskID: "t1", Prompt: "more", Quality: Quality720p, Extra: map[string]any{"taskId": "t2"}})
		}},
		{"aleph uploadCn", func(ctx context.Context, c *Client) (string, error) {
			return c.GenerateAleph(ctx, AlephRequest{Prompt: "snow", VideoURL: "https://example.com/in.mp4", Extra: map[string]any{"uploadCn": true}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, replyTaskID("task-1"))
			_, err := tt.call(t.Context(), c)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "Extra", ve.Field)
			assert.Empty(t, f.requests(), "nothing sent")
		})
	}
}
