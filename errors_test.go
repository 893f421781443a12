package runway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The failure texts Kie documents, copied verbatim: the task details' failMsg, the Aleph
// task's errorMessage and the callbacks' messages, with the trailing-period and
// capitalisation variants the doc copies use.
var documentedFailures = []struct {
	msg  string
	kind ErrorKind
}{
	// Task details (record-detail), failCode 400.
	{"Detected inappropriate content, please try replacing the video.", KindModeration},
	{"HD quality free trials complete. Subscribe now to continue creating in high resolution.", KindQuota},
	{"Inappropriate content detected. Please replace the image or video.", KindModeration},
	{"Please try again later. You can upgrade to Standard membership to start generating now.", KindQuota},
	{"Reached the limit for concurrent generations.", KindConcurrency},
	{"Unsupported width or height. Please adjust the size and try again.", KindSize},
	{"Upload failed due to network reasons, please re-enter", KindTransient},
	{"Your prompt was caught by our AI moderator.", KindModeration},
	{"Your prompt has triggered our AI moderator, please re-enter your prompt", KindModeration},
	{"Your prompt/negative prompt cannot exceed 2048 characters. Please check if your input is too long.", KindInput},
	{"Your video creation prompt contains NSFW content, which isn't allowed under our policy. Kindly revise your prompt and generate again.", KindModeration},
	{"Incorrect image format", KindFormat},
	// Aleph task details, commonly cited failure texts.
	{"Your prompt was caught by our AI moderator", KindModeration},
	{"Failed to fetch the image", KindInput},
	{"Inappropriate content detected", KindModeration},
	{"Upload failed due to network reasons", KindTransient},
	// Generation callback (page list and OpenAPI block).
	{"Incorrect image format.", KindFormat},
	{"Your prompt was caught by our AI moderator. Please adjust it and try again!", KindModeration},
	{"get image info failed.", KindFormat},
	{"Upload failed due to network reasons, please re-enter.", KindTransient},
	// Extension callback, numbered list (no trailing periods) and the failure example.
	{"Get image info failed", KindFormat},
	{"Get image info failed.", KindFormat},
	{"Inappropriate content detected. Please replace the image or video", KindModeration},
	{"Please try again later. You can upgrade to Standard membership to start generating now", KindQuota},
	{"Reached the limit for concurrent generations", KindConcurrency},
	{"Unsupported width or height. Please adjust the size and try again", KindSize},
	{"Your prompt/negative prompt cannot exceed 2048 characters. Please check if your input is too long", KindInput},
	{"Your video creation prompt contains NSFW content, which isn't allowed under our policy. Kindly revise your prompt and generate again", KindModeration},
	// Case variants: matching is case-insensitive.
	{"REACHED THE LIMIT FOR CONCURRENT GENERATIONS", KindConcurrency},
	{"your prompt was caught by our ai moderator", KindModeration},
}

func TestClassifyDocumentedMessages(t *testing.T) {
	t.Parallel()
	for _, tt := range documentedFailures {
		t.Run(tt.msg, func(t *testing.T) {
			t.Parallel()
			for _, code := range []int{400, 500, 0} {
				require.Equal(t, tt.kind, Classify(code, tt.msg), "code %d: the message decides", code)
			}
			err := (&Result{TaskID: "t1", Code: 400, Message: tt.msg}).Err()
			var te *TaskError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tt.kind, te.Kind)
			require.Equal(t, tt.msg, te.Message, "the API's text is kept verbatim")
			require.ErrorIs(t, err, ErrTaskFailed)
			require.ErrorIs(t, err, tt.kind.sentinel())
		})
	}
}

func TestClassifyByCodeAndUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code int
		msg  string
		want ErrorKind
	}{
		{402, "", KindQuota},
		{402, "Insufficient credits", KindQuota},
		{451, "", KindInput},
		{500, "Internal Error, Please try again later.", KindServer},
		{501, "Generation failed", KindServer},
		{408, "", KindServer},
		{455, "", KindServer},
		{400, "Generation failed, please try again later", KindUnknown},
		{400, "", KindUnknown},
		{0, "something new and unexpected", KindUnknown},
		{999, "", KindUnknown},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.code, tt.msg), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Classify(tt.code, tt.msg))
		})
	}
	err := (&Result{TaskID: "t9", Code: 400, Message: "Quantum flux misaligned"}).Err()
	var te *TaskError
	require.ErrorAs(t, err, &te)
	require.Equal(t, KindUnknown, te.Kind)
	require.Equal(t, "Quantum flux misaligned", te.Message)
	require.Contains(t, err.Error(), "Quantum flux misaligned")
	require.ErrorIs(t, err, ErrUnknownFailure)
}

var taskClassSentinels = []error{ErrModeration, ErrFormat, ErrQuota, ErrConcurrency, ErrSize, ErrInput, ErrTransient, ErrServer, ErrUnknownFailure}

func TestTaskErrorMatchesExactlyOneClass(t *testing.T) {
	t.Parallel()
	kinds := []ErrorKind{KindModeration, KindFormat, KindQuota, KindConcurrency, KindSize, KindInput, KindTransient, KindServer, KindUnknown}
	retryable := map[ErrorKind]bool{KindConcurrency: true, KindTransient: true, KindServer: true}
	for _, k := range kinds {
		te := &TaskError{TaskID: "t", Code: 400, Message: "m", Kind: k}
		n := 0
		for _, s := range taskClassSentinels {
			if errors.Is(te, s) {
				n++
			}
		}
		require.Equal(t, 1, n, "kind %s", k)
		require.ErrorIs(t, te, ErrTaskFailed)
		require.ErrorIs(t, fmt.Errorf("wrapped: %w", te), k.sentinel())
		require.NotErrorIs(t, te, ErrRateLimited)
		require.Equal(t, retryable[k], te.Retryable(), "kind %s", k)
	}
}

func TestValidationAndWaitErrors(t *testing.T) {
	t.Parallel()
	ve := &ValidationError{Field: "Prompt", Reason: "required"}
	require.ErrorIs(t, ve, ErrInvalidRequest)
	require.Equal(t, "runway: invalid request: Prompt: required", ve.Error())

	we := &WaitError{TaskID: "t1", LastState: StateGenerating, Err: ErrWaitTimeout}
	require.ErrorIs(t, we, ErrWaitTimeout)
	require.Contains(t, we.Error(), "generating")
	we = &WaitError{TaskID: "t1", Err: context.Canceled}
	require.ErrorIs(t, we, context.Canceled)
	require.Contains(t, we.Error(), "last state unknown")
}

// requestSentinels are the request-level sentinels an *APIError matches by code.
var requestSentinels = map[int]error{
	401: ErrUnauthorized, 402: ErrInsufficientCredits, 404: ErrNotFound, 422: ErrValidation,
	429: ErrRateLimited, 451: ErrImageFetch, 455: ErrMaintenance, 505: ErrFeatureDisabled,
}

// TestEnvelopeErrors pins CL-5 of SECURITY.md.
func TestEnvelopeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		want      []error // sentinels the error must match
		retryable bool
	}{
		{401, []error{ErrUnauthorized}, false},
		{402, []error{ErrInsufficientCredits, ErrQuota}, false},
		{404, []error{ErrNotFound}, false},
		{422, []error{ErrValidation}, false},
		{429, []error{ErrRateLimited}, true},
		{451, []error{ErrImageFetch}, false},
		{455, []error{ErrMaintenance}, true},
		{500, []error{ErrServer}, true},
		{501, []error{ErrServer}, false},
		{505, []error{ErrFeatureDisabled}, false},
	}
	shapes := []struct {
		name       string
		httpStatus func(code int) int
		body       func(code int) string
		wantCode   func(code int) int
	}{
		{"HTTP status with envelope", func(c int) int { return c }, func(c int) string { return fmt.Sprintf(`{"code":%d,"msg":"kie says %d","data":null}`, c, c) }, func(c int) int { return c }},
		{"HTTP status with plain body", func(c int) int { return c }, func(c int) string { return "upstream said no" }, func(int) int { return 0 }},
		{"HTTP 200 with body code", func(int) int { return 200 }, func(c int) string { return fmt.Sprintf(`{"code":%d,"msg":"kie says %d","data":{}}`, c, c) }, func(c int) int { return c }},
		{"HTTP 200 with string body code", func(int) int { return 200 }, func(c int) string { return fmt.Sprintf(`{"code":"%d","msg":"kie says %d"}`, c, c) }, func(c int) int { return c }},
	}
	all := []error{ErrUnauthorized, ErrInsufficientCredits, ErrNotFound, ErrValidation, ErrRateLimited, ErrImageFetch, ErrMaintenance, ErrFeatureDisabled, ErrServer, ErrQuota, ErrTaskFailed, ErrInvalidRequest}
	for _, shape := range shapes {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %d", shape.name, tt.code), func(t *testing.T) {
				t.Parallel()
				body := shape.body(tt.code)
				c, f := setup(t, func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(shape.httpStatus(tt.code))
					_, _ = io.WriteString(w, body)
				}, WithMaxRetries(0))
				_, err := c.GetTask(t.Context(), "task-1")
				require.Error(t, err)
				require.Equal(t, 1, f.count())

				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, shape.httpStatus(tt.code), ae.StatusCode)
				require.Equal(t, shape.wantCode(tt.code), ae.Code)
				require.Equal(t, http.MethodGet, ae.Method)
				require.Equal(t, "/api/v1/runway/record-detail", ae.Path)
				require.Equal(t, body, string(ae.Body))
				require.NotContains(t, err.Error(), "taskId=", "the query string is never kept")
				if ae.Code != 0 {
					require.Equal(t, fmt.Sprintf("kie says %d", tt.code), ae.Message)
				} else {
					require.Contains(t, ae.Message, "upstream said no")
				}
				for _, s := range all {
					want := false
					for _, w := range tt.want {
						want = want || s == w
					}
					require.Equal(t, want, errors.Is(err, s), "errors.Is(%v)", s)
				}
				require.Equal(t, tt.retryable, ae.Retryable())
			})
		}
	}
}

func TestAPIErrorIsTable(t *testing.T) {
	t.Parallel()
	for code, s := range requestSentinels {
		require.ErrorIs(t, &APIError{StatusCode: 200, Code: code}, s)
		require.ErrorIs(t, &APIError{StatusCode: code}, s)
		require.ErrorIs(t, &APIError{StatusCode: code, Code: 200}, s, "a 200 body code does not hide an HTTP %d", code)
	}
	for _, code := range []int{502, 503, 504} {
		ae := &APIError{StatusCode: code}
		require.ErrorIs(t, ae, ErrServer)
		require.True(t, ae.Retryable())
	}
	require.False(t, errors.Is(&APIError{StatusCode: 200, Code: 200}, ErrServer))
	require.False(t, (&APIError{StatusCode: 200}).Retryable(), "an unusable 200 body is not retried")
}

func TestAPIErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *APIError
		want string
	}{
		{&APIError{StatusCode: 200, Code: 455, Message: "maintenance", Method: "GET", Path: "/api/v1/chat/credit"}, "runway: GET /api/v1/chat/credit: code 455 (HTTP 200): maintenance"},
		{&APIError{StatusCode: 429, Code: 429, Message: "slow down", Method: "POST", Path: "/p"}, "runway: POST /p: code 429: slow down"},
		{&APIError{StatusCode: 502, Message: "Bad Gateway: x", Method: "GET", Path: "/p"}, "runway: GET /p: HTTP 502: Bad Gateway: x"},
		{&APIError{StatusCode: 500, Code: 500, Method: "POST", Path: "/p", MayExist: true}, "runway: POST /p: code 500 (the task may have been created; check before resubmitting)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.err.Error())
	}
}

// TestNonJSONBodyIsAnAPIError pins CL-12 of SECURITY.md.
func TestNonJSONBodyIsAnAPIError(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		body        string
		wantMessage string
	}{
		"HTML page with 200":    {"<html><body>\x00Bad gateway \xff page</body></html>", "response is not a JSON envelope: <html><body>?Bad gateway � page</body></html>"},
		"truncated JSON":        {`{"code":200,"msg":"succ`, `response is not a JSON envelope: {"code":200,"msg":"succ`},
		"envelope without code": {`{"msg":"success","data":{}}`, "response is not a JSON envelope"},
		"JSON array":            {`[1,2]`, "response is not a JSON envelope"},
		"empty body":            {``, "response is not a JSON envelope"},
		"code out of range":     {`{"code":2e308}`, "response is not a JSON envelope"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, f := setup(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = io.WriteString(w, tt.body)
			})
			_, err := c.Credits(t.Context())
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 200, ae.StatusCode)
			require.Zero(t, ae.Code)
			require.True(t, strings.HasPrefix(ae.Message, tt.wantMessage), ae.Message)
			require.Equal(t, tt.body, string(ae.Body))
			require.Equal(t, 1, f.count(), "an unusable 200 is not retried")
		})
	}
}

// TestHugeBodyIsReadThroughALimit pins CL-12 of SECURITY.md.
func TestHugeBodyIsReadThroughALimit(t *testing.T) {
	t.Parallel()
	const total = 50 << 20
	chunk := []byte(strings.Repeat("x", 64<<10))
	c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"code":200,"msg":"`)
		for written := 0; written < total; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up after its limit
			}
		}
		_, _ = io.WriteString(w, `"}`)
	})
	_, err := c.Credits(t.Context())
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Contains(t, ae.Message, "larger than")
	require.Len(t, ae.Body, maxResponseBytes)
	require.True(t, strings.HasPrefix(string(ae.Body), `{"code":200,"msg":"xxx`))
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	require.Equal(t, "ab?c", printable("ab\nc", 10))
	require.Equal(t, "a�b", printable("a\xffb", 10))
	require.Equal(t, "abc…", printable("abcdef", 3))
}

// TestSentinelsAreListedByGroup keeps the grouped list of sentinels true: every exported Err
// variable of the package appears in the overview on ErrMissingAPIKey's block and in the
// README's table, and neither names one that does not exist.
func TestSentinelsAreListedByGroup(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	declared := map[string]bool{}
	var overview string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		require.NoError(t, err)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") {
						declared[n.Name] = true
						if n.Name == "ErrMissingAPIKey" {
							overview = g.Doc.Text()
						}
					}
				}
			}
		}
	}
	require.NotEmpty(t, overview, "the overview is the doc of ErrMissingAPIKey's var block")
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	start := bytes.Index(readme, []byte("The sentinels to match with `errors.Is`, by group:"))
	require.GreaterOrEqual(t, start, 0, "README's table of sentinels")
	table := string(readme[start:])
	table = table[strings.Index(table, "\n|"):]
	if end := strings.Index(table, "\n\n"); end >= 0 {
		table = table[:end]
	}
	word := regexp.MustCompile(`\bErr[A-Z][A-Za-z]*\b`)
	for where, text := range map[string]string{"errors.go overview": overview, "README table": table} {
		listed := map[string]bool{}
		for _, n := range word.FindAllString(text, -1) {
			listed[n] = true
			require.True(t, declared[n], "%s names %s, which is not a sentinel of the package", where, n)
		}
		for n := range declared {
			require.True(t, listed[n], "%s leaves out %s", where, n)
		}
	}
}

// TestAPIErrorBodyRedactedBeforeCut: a key that spans the 1 MiB cut of a response body leaves
// no part of itself in APIError.Body (the body is redacted, then cut), and a key the API
// echoes JSON-escaped ("/" written "\/") is removed from Body too.
func TestAPIErrorBodyRedactedBeforeCut(t *testing.T) {
	t.Parallel()
	for _, at := range []int{maxResponseBytes - 20, maxResponseBytes - 5, maxResponseBytes - 3} {
		t.Run(strconv.Itoa(at), func(t *testing.T) {
			t.Parallel()
			prefix := `{"code":200,"msg":"`
			body := prefix + strings.Repeat("x", at-len(prefix)) + testKey + strings.Repeat("y", 100) + `"}`
			c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })
			_, err := c.Credits(t.Context())
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Contains(t, ae.Message, "larger than")
			assert.False(t, strings.Contains(string(ae.Body), "sk-"), "no part of the key; body ends %q", ae.Body[max(0, len(ae.Body)-40):])
			assert.LessOrEqual(t, len(ae.Body), maxResponseBytes)
		})
	}

	t.Run("JSON-escaped key", func(t *testing.T) {
		t.Parallel()
		const key = "sk/test/SECRET/9z<&>"
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"code":422,"msg":"bad","data":{"a":"sk\/test\/SECRET\/9z\u003c\u0026\u003e","b":"sk/test/SECRET/9z<&>"}}`)
		}))
		defer srv.Close()
		c, err := NewClient(key, WithBaseURL(srv.URL))
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Credits(t.Context())
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.NotContains(t, string(ae.Body), "SECRET", string(ae.Body))
		assert.Equal(t, 2, strings.Count(string(ae.Body), redactedMark), string(ae.Body))
	})
}

// TestResultErrKeepsTheClientsKeysOut: a failMsg that quotes the API key reaches no error
// text, whichever way the result came: GetTask then Task.Result().Err(), SaveResult of that
// result, and the result func of the client's callback handler.
func TestResultErrKeepsTheClientsKeysOut(t *testing.T) {
	t.Parallel()
	failMsg := "invalid key " + testKey
	body := fmt.Sprintf(`{"code":200,"msg":"success","data":{"taskId":"t1","state":"fail","failCode":400,"failMsg":%q}}`, failMsg)
	c, _ := setup(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })

	task, err := c.GetTask(t.Context(), "t1")
	require.NoError(t, err)
	assert.Equal(t, failMsg, task.FailMessage, "verbatim on the field")
	err = task.Result().Err()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), testKey[:8])
	assert.Contains(t, err.Error(), "invalid key "+redactedMark)

	_, err = c.SaveResult(t.Context(), task.Result(), t.TempDir())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), testKey[:8])

	got := make(chan error, 1)
	h := c.CallbackHandler(WithResultFunc(func(_ context.Context, r *Result) error {
		got <- r.Err()
		return nil
	}))
	require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody(testID, 400, failMsg), nil)).Code)
	err = <-got
	require.Error(t, err)
	assert.NotContains(t, err.Error(), testKey[:8])
	assert.Contains(t, err.Error(), "invalid key "+redactedMark)
}
