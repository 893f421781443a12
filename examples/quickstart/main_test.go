package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestOfflineQuickstart runs the offline flow in-process (no KIE_API_KEY) and checks the key
// lines of its output: every state shown, the success, the classified failure and the lost
// callback rescued by polling. It leaves no goroutine behind.
func TestOfflineQuickstart(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	noEnv := func(string) string { return "" }

	require.NoError(t, run(ctx, &out, noEnv), out.String())

	got := out.String()
	for _, line := range []string{
		"runway-go quickstart: offline",
		"(HMAC-signed, served by c.CallbackHandler)",
		"2. A failed task, classified",
		"kind moderation, retryable false",
		`code 400: "Your prompt was caught by our AI moderator. Please adjust it and try again!"`,
		"errors.Is(err, runway.ErrModeration) = true",
		"3. A lost callback (the fake drops it), rescued by polling",
		"   result: success via poll\n",
		"done in ",
	} {
		require.Contains(t, got, line)
	}
	// Polling shows the states in order, starting with wait. A poll delayed on a loaded
	// machine may skip one; the offline run normally shows wait, queueing and generating.
	states := regexp.MustCompile(`(?m)^   state: (\w+)$`).FindAllStringSubmatch(got, -1)
	require.GreaterOrEqual(t, len(states), 2, got)
	require.Equal(t, "wait", states[0][1])
	order := map[string]int{"wait": 0, "queueing": 1, "generating": 2, "success": 3}
	for i := 1; i < len(states); i++ {
		require.Less(t, order[states[i-1][1]], order[states[i][1]], got)
	}
	require.Regexp(t, `1\. Generate[^\n]*\n   task [0-9a-f]{32} submitted\n`, got)
	require.Regexp(t, `   result: success via (callback|poll)\n     video: http://127\.0\.0\.1:\d+/files/[0-9a-f]{32}/video\.mp4\n`, got)
}

// TestLiveNeedsReachableListenAddr: with a key and a callback URL, a listen address that
// cannot be bound fails before anything is submitted.
func TestLiveNeedsReachableListenAddr(t *testing.T) {
	defer goleak.VerifyNone(t)
	env := map[string]string{
		"KIE_API_KEY":      "not-a-real-key",
		"KIE_CALLBACK_URL": "https://example.com/kie/callback",
		"KIE_LISTEN_ADDR":  "127.0.0.1:99999",
	}
	var out bytes.Buffer
	err := run(context.Background(), &out, func(k string) string { return env[k] })
	require.Error(t, err)
	require.NotContains(t, out.String(), "submitted")
}
