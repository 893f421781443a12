package runway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile is network text that tries everything at once: a key after Bearer, a signed URL,
// log-line forging control characters and a terminal escape.
const hostile = "boom\nlevel=ERROR msg=forged\r\x1b[31mred Bearer " + testKey +
	" https://file.test/v.mp4?X-Amz-Signature=abc123&Expires=9 \u202ereversed"

// assertSafeText checks what every error text built from untrusted values must hold.
func assertSafeText(t *testing.T, s string) {
	t.Helper()
	assert.NotContains(t, s, testKey)
	assert.NotContains(t, s, "abc123", "signed query")
	assert.NotContains(t, s, "\n")
	assert.NotContains(t, s, "\r")
	assert.NotContains(t, s, "\x1b")
	assert.NotContains(t, s, "\u202e")
	assert.True(t, utf8.ValidString(s))
	assert.LessOrEqual(t, len(s), maxErrCause+2*maxErrValue, "bounded")
	assert.Equal(t, 1, strings.Count(s, "runway:"), "one prefix: %s", s)
}

func TestErrText(t *testing.T) {
	t.Parallel()
	got := errText(hostile)
	assert.Equal(t, `boom\nlevel=ERROR msg=forged\r\x1b[31mred Bearer [REDACTED] https://file.test/v.mp4?[REDACTED] \u202ereversed`, got)

	assert.Equal(t, "key [REDACTED] here", errText("key hmac-secret here", "hmac-secret"))
	assert.Equal(t, "api_key=[REDACTED]&x", errText("api_key=k123&x"))
	assert.Equal(t, "a\uFFFDb", errText("a\xffb"))
	assert.Equal(t, `\x00\x7f\x85\t`, errText("\x00\x7f\u0085\t"))

	huge := strings.Repeat("é", 450_000) // 900 KB
	got = errText(huge)
	require.True(t, utf8.ValidString(got), "cut on a rune boundary")
	require.LessOrEqual(t, len(got), maxErrValue+40)
	require.True(t, strings.HasPrefix(got, "éé"))
	require.True(t, strings.HasSuffix(got, " more bytes]"), got[len(got)-40:])
	require.Contains(t, got, fmt.Sprintf("…[%d more bytes]", len(huge)-maxErrValue))

}

// TestErrTextKeyStraddlingTheScanCut: a known key that straddles the end of the scanned
// prefix, behind text that redaction shrinks (a URL query), is redacted whole: none of it
// reaches the output, whatever the prefix.
func TestErrTextKeyStraddlingTheScanCut(t *testing.T) {
	t.Parallel()
	s := "see https://h/p?" + strings.Repeat("q", 1163) + " " + testKey
	got := errText(s, testKey)
	assert.NotContains(t, got, testKey[:8], got)
	assert.Equal(t, "see https://h/p?[REDACTED] [REDACTED]", got)

	// Property: for random prefixes around the cut, neither the key nor its first 8 bytes
	// appear in the output.
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"q", " ", "é", "?", "https://h/p?", "Bearer ", "x=", testKey[:5], "\n"}
	for i := range 300 {
		lim := []int{maxErrValue, maxErrCause}[i%2]
		var b strings.Builder
		n := 4*lim - 60 + rng.IntN(120)
		for b.Len() < n {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		in := b.String() + " " + testKey + " tail"
		got := errTextMax(in, lim, testKey)
		require.NotContains(t, got, testKey[:8], "input %q", in)
	}
}

func TestOnePrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"runway: NewClient: runway: missing API key":             "runway: NewClient: missing API key",
		"runway: a: runway: b\nrunway: c":                        "runway: a: b\nc",
		"runway: submission outcome unknown: runway: POST /x: y": "runway: submission outcome unknown: POST /x: y",
		"runway: plain":      "runway: plain",
		"refetch: runway: x": "refetch: x",
	} {
		assert.Equal(t, want, onePrefix(in))
	}
}

// TestErrorTextsAreSanitised drives every error type that carries network values with hostile
// input: the Error() text is safe while the fields keep the value verbatim.
// Pins CL-15 of SECURITY.md.
func TestErrorTextsAreSanitised(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("d", 900<<10)

	t.Run("failCode and failMsg through GetTask and WaitForResult", func(t *testing.T) {
		t.Parallel()
		body := fmt.Sprintf(`{"code":200,"msg":"success","data":{"taskId":"t1","state":"fail","failCode":%s,"failMsg":%s}}`,
			js("Bearer "+testKey), js(hostile+huge))
		c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })
		task, err := c.GetTask(t.Context(), "t1")
		require.NoError(t, err)
		assert.Equal(t, "Bearer "+testKey, task.FailCodeText, "verbatim on the field")

		res, err := c.WaitForResult(t.Context(), "t1")
		require.NotNil(t, res)
		var te *TaskError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "Bearer "+testKey, te.CodeText)
		assert.Equal(t, hostile+huge, te.Message, "verbatim on the field")
		assertSafeText(t, err.Error())
	})
	t.Run("a bare API key in a message", func(t *testing.T) {
		t.Parallel()
		te := &TaskError{TaskID: "t", Code: 400, Message: "key " + testKey, secrets: []string{testKey}}
		assertSafeText(t, te.Error())
	})
	t.Run("APIError message and path", func(t *testing.T) {
		t.Parallel()
		ae := &APIError{StatusCode: 200, Code: 500, Method: "GET", Path: "/p\n\r\x1b[2Jx", Message: hostile + huge}
		assertSafeText(t, ae.Error())
		assert.Contains(t, ae.Error(), `/p\n\r\x1b[2Jx`)
		assert.Equal(t, hostile+huge, ae.Message)
	})
	t.Run("APIError from the wire", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = fmt.Fprintf(w, `{"code":422,"msg":%s,"data":null}`, js(hostile+huge))
		})
		_, err := c.Credits(t.Context())
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assertSafeText(t, err.Error())
		assert.Len(t, ae.Message, len(strings.ReplaceAll(hostile+huge, testKey, redactedMark)), "the whole message is kept")
	})
	t.Run("900 KB data string", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = fmt.Fprintf(w, `{"code":200,"msg":"success","data":%s}`, js(huge+"\n"+testKey))
		})
		_, err := c.Credits(t.Context())
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assertSafeText(t, err.Error())
		_, err = c.GetTask(t.Context(), "t1")
		require.ErrorAs(t, err, &ae)
		assertSafeText(t, err.Error())
		assert.Greater(t, len(ae.Body), len(huge), "the body is kept")
	})
	t.Run("callback msg", func(t *testing.T) {
		t.Parallel()
		r, err := ParseCallback([]byte(fmt.Sprintf(`{"code":400,"msg":%s,"data":{"task_id":"t1"}}`, js(hostile+huge))))
		require.NoError(t, err)
		err = r.Err()
		require.Error(t, err)
		assertSafeText(t, err.Error())
		assert.Equal(t, hostile+huge, r.Message)
	})
	t.Run("validation reason carrying the user's value", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t, func(http.ResponseWriter, *http.Request) { t.Error("nothing is sent") })
		_, err := c.Generate(t.Context(), GenerateRequest{Prompt: "p", Duration: 5, AspectRatio: AspectRatio16x9,
			Quality: Quality("x\n\x1b[31m" + huge)})
		require.ErrorIs(t, err, ErrInvalidRequest)
		assertSafeText(t, err.Error())
	})
	t.Run("wait error", func(t *testing.T) {
		t.Parallel()
		we := &WaitError{TaskID: "t", Err: ErrWaitTimeout, LastErr: &APIError{StatusCode: 502, Method: "GET", Path: "/p", Message: hostile}}
		assertSafeText(t, we.Error())
		assertSafeText(t, (&WaitError{TaskID: "t", Err: errors.New("read: " + hostile + huge)}).Error())
		require.ErrorIs(t, we, ErrServer)
		require.ErrorIs(t, we, ErrWaitTimeout)
	})
	t.Run("download error", func(t *testing.T) {
		t.Parallel()
		de := &DownloadError{Host: "h\x1b[31m", Path: "/v.mp4\r\nforged " + huge, StatusCode: 404, Err: ErrHostNotAllowed}
		assertSafeText(t, de.Error())
		de = &DownloadError{Host: "h", Path: "/p", Err: fmt.Errorf("%w: unexpected Content-Range %s", ErrIncomplete, hostile)}
		assertSafeText(t, de.Error())
	})
	t.Run("callback error", func(t *testing.T) {
		t.Parallel()
		ce := &CallbackError{Field: "code", Reason: "x\ny"}
		assertSafeText(t, ce.Error())
	})
}

// TestErrorTextsHaveOnePrefix: wrapped errors read with one "runway: ", wherever they are
// built.
func TestErrorTextsHaveOnePrefix(t *testing.T) {
	t.Parallel()
	_, err := NewClient("")
	require.ErrorIs(t, err, ErrMissingAPIKey)
	assert.Equal(t, "runway: NewClient: missing API key", err.Error())

	_, err = NewClient("", WithBaseURL("ftp://x"), WithMaxRetries(-1))
	require.ErrorIs(t, err, ErrMissingAPIKey)
	assert.Equal(t, 1, strings.Count(err.Error(), "runway:"), err.Error())

	c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"code":500,"msg":"internal","data":null}`))
	})
	_, err = c.Generate(t.Context(), GenerateRequest{Prompt: "p", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9})
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	assert.Equal(t, 1, strings.Count(err.Error(), "runway:"), err.Error())

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Generate(ctx, GenerateRequest{Prompt: "p", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, strings.Count(err.Error(), "runway:"), err.Error())

	for _, e := range []error{
		&WaitError{TaskID: "t", Err: ErrWaitTimeout},
		&WaitError{TaskID: "t", Err: fmt.Errorf("%w %q", ErrUnknownState, "x")},
		&DownloadError{Host: "h", Path: "/p", Err: ErrHostNotAllowed},
		&DownloadError{Host: "h", Path: "/p", Err: &APIError{StatusCode: 500, Method: "POST", Path: "/d"}},
		errors.Join(ErrMissingAPIKey, ErrInvalidRequest),
	} {
		assert.Equal(t, 1, strings.Count(onePrefix(e.Error()), "runway:"), e.Error())
	}
	assert.Equal(t, 1, strings.Count((&WaitError{TaskID: "t", Err: ErrWaitTimeout}).Error(), "runway:"))
	assert.Equal(t, 1, strings.Count((&DownloadError{Host: "h", Path: "/p", Err: ErrHostNotAllowed}).Error(), "runway:"))

	// Saving a failed task: the task's error under the save's prefix, once.
	failed := &Result{TaskID: "t", Code: 400, Message: "caught by our AI moderator"}
	_, err = c.SaveResult(t.Context(), failed, t.TempDir())
	require.ErrorIs(t, err, ErrModeration)
	assert.Equal(t, "runway: save: task t failed (moderation, code 400): caught by our AI moderator", err.Error())
}

// TestSentinelTextsNameWhatTheyMatch: a sentinel whose text names codes names every code an
// *APIError matching it can carry.
func TestSentinelTextsNameWhatTheyMatch(t *testing.T) {
	t.Parallel()
	sentinels := []error{ErrUnauthorized, ErrInsufficientCredits, ErrNotFound, ErrValidation, ErrRateLimited,
		ErrImageFetch, ErrMaintenance, ErrFeatureDisabled, ErrServer, ErrQuota}
	for code := 100; code < 600; code++ {
		for _, s := range sentinels {
			_, codes, ok := strings.Cut(s.Error(), "(")
			if !ok {
				continue
			}
			for _, ae := range []*APIError{{StatusCode: code}, {StatusCode: 200, Code: code}} {
				if errors.Is(ae, s) {
					assert.Contains(t, codes, strconv.Itoa(code), "%q matches code %d", s, code)
				}
			}
		}
	}
}

// FuzzErrText: whatever the input, the text is valid UTF-8, bounded, free of control and
// format characters, and never contains a known secret.
func FuzzErrText(f *testing.F) {
	f.Add(hostile, testKey)
	f.Add("a\xffb\x00\u2028", "k")
	f.Add(strings.Repeat("é", 400)+"Bearer tok", "tok")
	f.Add("https://h/p?sig=1#f", "")
	f.Fuzz(func(t *testing.T, s, secret string) {
		if len(secret) < 4 || strings.Contains(redactedMark, secret) {
			secret = ""
		}
		got := errText(s, secret)
		require.True(t, utf8.ValidString(got))
		require.LessOrEqual(t, len(got), maxErrValue+40)
		for _, r := range got {
			require.False(t, r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r), "%q in %q", r, got)
		}
		// The secret may still show up when escaping or marks spell it out of other text
		// (a secret "x1b[" and an ESC in s); it must not come from s's own copies of it.
		if secret != "" && !strings.Contains(errText(strings.ReplaceAll(s, secret, "")), secret) {
			require.NotContains(t, got, secret)
		}
	})
}
