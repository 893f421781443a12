package runway

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCallbackHandlerHardening is the callback-input checklist of SECURITY.md, one row per bad
// input, each row named after its CB id (CB-14 and CB-16..CB-19 are stateful and have their
// own tests). Each row runs in a synctest bubble, which fails the row if any goroutine the
// handler started is left behind.
func TestCallbackHandlerHardening(t *testing.T) {
	t.Parallel()
	ok := runwayBody(testID, 200, "All generated successfully.")
	signed := sign(testKey1, testID, testNowTS)
	withSig := func(ts, sig string) map[string]string {
		return map[string]string{HeaderWebhookTimestamp: ts, HeaderWebhookSignature: sig}
	}
	validSig := signed[HeaderWebhookSignature]
	keyed := []CallbackOption{WithHMACKey(testKey1, testKey2)}
	deep := nestedObject(10000)
	shallow := nestedObject(100)
	longID := strings.Repeat("a", 1<<20-100)

	tests := []struct {
		name       string
		method     string
		headers    map[string]string
		body       string
		opts       []CallbackOption
		want       int
		wantCalled bool
		wantLog    string
		check      func(t *testing.T, r *Result)
	}{
		// CB-1: only POST is accepted
		{name: "CB-1 GET", method: http.MethodGet, body: ok, want: 405},
		{name: "CB-1 PUT", method: http.MethodPut, body: ok, want: 405},
		{name: "CB-1 DELETE", method: http.MethodDelete, body: ok, want: 405},
		{name: "CB-1 HEAD", method: http.MethodHead, want: 405},
		{name: "CB-1 OPTIONS", method: http.MethodOptions, want: 405},
		// CB-2: only JSON in UTF-8 is accepted
		{name: "CB-2 text/plain", headers: map[string]string{"Content-Type": "text/plain"}, body: ok, want: 415},
		{name: "CB-2 form", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: ok, want: 415},
		{name: "CB-2 missing type", headers: map[string]string{"Content-Type": ""}, body: ok, want: 415},
		{name: "CB-2 malformed type", headers: map[string]string{"Content-Type": "application/json; charset"}, body: ok, want: 415},
		{name: "CB-2 latin1 charset", headers: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, body: ok, want: 415},
		{name: "CB-2 charset utf-8", headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: ok, want: 200, wantCalled: true},
		{name: "CB-2 case variant", headers: map[string]string{"Content-Type": "Application/JSON; Charset=UTF-8"}, body: ok, want: 200, wantCalled: true},
		// CB-3: body size limit (the chunked case and the read bound are in TestCallbackBodyCap)
		{name: "CB-3 body over the cap", body: `{"code":200,"msg":"` + strings.Repeat("x", 200) + `"}`, opts: []CallbackOption{WithMaxBodyBytes(100)}, want: 413},
		// CB-4: a body that is not an object
		{name: "CB-4 empty body", body: "", want: 400},
		{name: "CB-4 null", body: "null", want: 400},
		{name: "CB-4 array", body: "[]", want: 400},
		{name: "CB-4 string", body: `"hello"`, want: 400},
		{name: "CB-4 number", body: `200`, want: 400},
		// CB-5: invalid JSON, decoded whole
		{name: "CB-5 truncated", body: ok[:len(ok)-5], want: 400},
		{name: "CB-5 trailing garbage", body: ok + "garbage", want: 400},
		{name: "CB-5 two objects", body: ok + ok, want: 400},
		{name: "CB-5 BOM", body: "\xef\xbb\xbf" + ok, want: 400},
		// CB-6: deep nesting; valid callbacks but for the nesting, so only the depth can refuse them
		// (encoding/json stops at 10 000 levels; the bound on work is in TestParseCallbackDeepNesting)
		{name: "CB-6 10000 levels in an unknown field", body: `{"code":200,"data":{"task_id":"t1"},"extra":` + deep + `}`, want: 400, wantLog: "exceeded max depth"},
		{name: "CB-6 10000 levels inside data", body: `{"code":200,"data":{"task_id":"t1","extra":` + deep + `}}`, want: 400, wantLog: "exceeded max depth"},
		{name: "CB-6 shallow nesting accepted", body: `{"code":200,"data":{"task_id":"t1"},"extra":` + shallow + `}`, want: 200, wantCalled: true},
		// CB-7: wrong types and inconsistent ids
		{name: "CB-7 code as string", body: `{"code":"200","msg":"x","data":{"task_id":"t1"}}`, want: 400, wantLog: "code"},
		{name: "CB-7 code 2e308", body: `{"code":2e308,"msg":"x","data":{"task_id":"t1"}}`, want: 400},
		{name: "CB-7 code float", body: `{"code":200.0,"data":{"task_id":"t1"}}`, want: 400},
		{name: "CB-7 code negative", body: `{"code":-200,"data":{"task_id":"t1"}}`, want: 400},
		{name: "CB-7 code null", body: `{"code":null,"msg":"x","data":{"task_id":"t1"}}`, want: 400},
		{name: "CB-7 code missing", body: `{"msg":"x","data":{"task_id":"t1"}}`, want: 400},
		{name: "CB-7 task_id number", body: `{"code":200,"data":{"task_id":123}}`, want: 400, wantLog: "data.task_id"},
		{name: "CB-7 task_id null", body: `{"code":200,"data":{"task_id":null}}`, want: 400},
		{name: "CB-7 task_id empty", body: `{"code":200,"data":{"task_id":""}}`, want: 400},
		{name: "CB-7 msg number", body: `{"code":200,"msg":5,"data":{"task_id":"t1"}}`, want: 400},
		{name: "CB-7 data string", body: `{"code":200,"data":"t1","taskId":"t1"}`, want: 400},
		{name: "CB-7 ids disagree", body: `{"code":200,"taskId":"t2","data":{"task_id":"t1"}}`, want: 400},
		// CB-8: unknown fields are ignored
		{
			name: "CB-8 unknown fields", want: 200, wantCalled: true,
			body:  `{"code":200,"msg":"ok","extra":{"deep":[1,2,{"x":null}]},"data":{"task_id":"t1","callbackType":"task_completed","more":[true]}}`,
			check: func(t *testing.T, r *Result) { require.Equal(t, "t1", r.TaskID) },
		},
		// CB-9: both callback shapes; a task id is required
		{
			name: "CB-9 Runway shape", body: ok, want: 200, wantCalled: true,
			check: func(t *testing.T, r *Result) {
				require.Equal(t, testID, r.TaskID)
				require.Equal(t, "https://file.com/k/1.mp4", r.VideoURL)
				require.Equal(t, SourceCallback, r.Source)
				require.NoError(t, r.Err())
			},
		},
		{
			name: "CB-9 Aleph shape", want: 200, wantCalled: true,
			body: `{"code":200,"msg":"success","data":{"result_video_url":"https://f/v.mp4","result_image_url":"https://f/i.png"},"taskId":"t1"}`,
			check: func(t *testing.T, r *Result) {
				require.Equal(t, "t1", r.TaskID)
				require.Equal(t, "https://f/v.mp4", r.VideoURL)
				require.Equal(t, "https://f/i.png", r.ImageURL)
			},
		},
		{
			name: "CB-9 Aleph error with data null", want: 200, wantCalled: true,
			body:  `{"code":400,"msg":"Your prompt was caught by our AI moderator.","data":null,"taskId":"t1"}`,
			check: func(t *testing.T, r *Result) { require.ErrorIs(t, r.Err(), ErrModeration) },
		},
		{name: "CB-9 no task id", body: `{"code":200,"msg":"ok","data":{"video_url":"https://f/v.mp4"}}`, want: 400},
		{name: "CB-9 no data, no taskId", body: `{"code":200,"msg":"ok"}`, want: 400},
		// CB-10: missing signature headers
		{name: "CB-10 unsigned", body: ok, opts: keyed, want: 401},
		{name: "CB-10 no signature", body: ok, opts: keyed, headers: map[string]string{HeaderWebhookTimestamp: testNowTS}, want: 401},
		{name: "CB-10 no timestamp", body: ok, opts: keyed, headers: map[string]string{HeaderWebhookSignature: validSig}, want: 401},
		// CB-11: malformed timestamps
		{name: "CB-11 ts abc", body: ok, opts: keyed, headers: withSig("abc", validSig), want: 401},
		{name: "CB-11 ts 1.7e9", body: ok, opts: keyed, headers: withSig("1.7e9", validSig), want: 401},
		{name: "CB-11 ts -1", body: ok, opts: keyed, headers: withSig("-1", validSig), want: 401},
		{name: "CB-11 ts int64 overflow", body: ok, opts: keyed, headers: withSig("99999999999999999999", validSig), want: 401},
		{name: "CB-11 ts leading space", body: ok, opts: keyed, headers: withSig(" "+testNowTS, validSig), want: 401},
		{name: "CB-11 ts plus sign", body: ok, opts: keyed, headers: withSig("+"+testNowTS, validSig), want: 401},
		// CB-12: timestamp outside the tolerance
		{name: "CB-12 too old", body: ok, opts: keyed, headers: sign(testKey1, testID, "1769670459"), want: 401, wantLog: "timestamp out of range"},
		{name: "CB-12 too new", body: ok, opts: keyed, headers: sign(testKey1, testID, "1769671061"), want: 401, wantLog: "timestamp out of range"},
		{name: "CB-12 milliseconds", body: ok, opts: keyed, headers: sign(testKey1, testID, "1769670760000"), want: 401, wantLog: "timestamp out of range"},
		{name: "CB-12 year 5138 (Sub overflow)", body: ok, opts: keyed, headers: sign(testKey1, testID, "99999999999"), want: 401, wantLog: "timestamp out of range"},
		{name: "CB-12 edge of window", body: ok, opts: keyed, headers: sign(testKey1, testID, "1769670460"), want: 200, wantCalled: true},
		{name: "CB-12 custom tolerance", body: ok, opts: append([]CallbackOption{WithTolerance(10e9)}, keyed...), headers: sign(testKey1, testID, "1769670749"), want: 401, wantLog: "timestamp out of range"},
		// CB-13: bad signatures
		{name: "CB-13 not base64", body: ok, opts: keyed, headers: withSig(testNowTS, "%%%not-base64%%%"), want: 401},
		{name: "CB-13 truncated", body: ok, opts: keyed, headers: withSig(testNowTS, validSig[:20]), want: 401},
		{name: "CB-13 too long", body: ok, opts: keyed, headers: withSig(testNowTS, strings.Repeat("A", 4096)), want: 401},
		{name: "CB-13 other task id", body: ok, opts: keyed, headers: sign(testKey1, "other-task", testNowTS), want: 401},
		{name: "CB-13 other timestamp", body: ok, opts: keyed, headers: withSig(testNowTS, sign(testKey1, testID, "1769670761")[HeaderWebhookSignature]), want: 401},
		{name: "CB-13 unknown key", body: ok, opts: keyed, headers: sign("not-the-key", testID, testNowTS), want: 401},
		{name: "CB-13 hex digest", body: ok, opts: keyed, headers: withSig(testNowTS, hexOf(validSig)), want: 401},
		{name: "signed ok", body: ok, opts: keyed, headers: signed, want: 200, wantCalled: true},
		{name: "signed ok, unpadded", body: ok, opts: keyed, headers: withSig(testNowTS, strings.TrimRight(validSig, "=")), want: 200, wantCalled: true},
		{
			name: "signed Aleph uses top-level taskId", opts: keyed, headers: sign(testKey1, "t1", testNowTS), want: 200, wantCalled: true,
			body: `{"code":200,"msg":"success","data":{"result_video_url":"https://f/v.mp4"},"taskId":"t1"}`,
		},
		// CB-15: key rotation
		{name: "CB-15 first key", body: ok, opts: keyed, headers: sign(testKey1, testID, testNowTS), want: 200, wantCalled: true},
		{name: "CB-15 second key", body: ok, opts: keyed, headers: sign(testKey2, testID, testNowTS), want: 200, wantCalled: true},
		// CB-20: hostile task ids
		{name: "CB-20 1 MB task id", body: `{"code":200,"data":{"task_id":"` + longID + `"}}`, opts: []CallbackOption{WithMaxBodyBytes(2 << 20)}, want: 400},
		{name: "CB-20 129-byte task id", body: `{"code":200,"data":{"task_id":"` + strings.Repeat("b", 129) + `"}}`, want: 400},
		{name: "CB-20 control character", body: `{"code":200,"data":{"task_id":"t\u0001x"}}`, want: 400},
		{name: "CB-20 newline", body: `{"code":200,"data":{"task_id":"t\nINFO forged log line"}}`, want: 400},
		{name: "CB-20 space", body: `{"code":200,"data":{"task_id":"t x"}}`, want: 400},
		{name: "CB-20 non-UTF-8", body: "{\"code\":200,\"data\":{\"task_id\":\"t\xff\xfe\"}}", want: 400},
		{name: "CB-20 bidi override", body: `{"code":200,"data":{"task_id":"t\u202ex"}}`, want: 400},
		// CB-21: unsafe URLs are kept as data
		{
			name: "CB-21 hostile URLs kept as data", want: 200, wantCalled: true,
			body: `{"code":200,"msg":"ok","data":{"task_id":"t1","video_url":"javascript:alert(1)","image_url":"file:///etc/passwd"}}`,
			check: func(t *testing.T, r *Result) {
				require.Equal(t, "javascript:alert(1)", r.VideoURL)
				require.Equal(t, "file:///etc/passwd", r.ImageURL)
			},
		},
		{
			name: "CB-21 link-local URL kept as data", want: 200, wantCalled: true,
			body:  `{"code":200,"msg":"ok","data":{"task_id":"t1","video_url":"http://169.254.169.254/latest/meta-data"}}`,
			check: func(t *testing.T, r *Result) { require.Equal(t, "http://169.254.169.254/latest/meta-data", r.VideoURL) },
		},
		// CB-22: no content encodings
		{name: "CB-22 gzip", headers: map[string]string{"Content-Encoding": "gzip"}, body: ok, want: 415},
		{name: "CB-22 identity", headers: map[string]string{"Content-Encoding": "identity"}, body: ok, want: 415},
		{name: "CB-22 br with key", headers: map[string]string{"Content-Encoding": "br"}, opts: keyed, body: ok, want: 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var rc recorder
				var logs logBuffer
				opts := append([]CallbackOption{
					WithClock(fixedClock), WithResultFunc(rc.resultFunc()), WithCallbackLogger(logs.logger()),
				}, tc.opts...)
				h := NewCallbackHandler(opts...)
				method := tc.method
				if method == "" {
					method = http.MethodPost
				}
				req := newCallbackRequest(tc.body, tc.headers)
				req.Method = method

				rec := serve(h, req)

				require.Equal(t, tc.want, rec.Code, "log: %s", logs.String())
				requireGenericBody(t, rec)
				if tc.want == 405 {
					require.Equal(t, "POST", rec.Header().Get("Allow"))
				}
				if tc.wantCalled {
					require.EqualValues(t, 1, rc.calls.Load())
				} else {
					require.Zero(t, rc.calls.Load())
				}
				if tc.wantLog != "" {
					require.Contains(t, logs.String(), tc.wantLog)
				}
				if tc.check != nil {
					tc.check(t, rc.result())
				}
				out := logs.String()
				for _, secret := range []string{testKey1, testKey2, validSig} {
					require.NotContains(t, out, secret)
				}
				require.NotContains(t, out, "\x01")
				require.NotContains(t, out, "forged log line\n")
			})
		})
	}
}

func hexOf(b64 string) string {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		panic(err)
	}
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(raw))
	for _, c := range raw {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestCallbackBodyCap is CB-3 (body size limit): a huge declared length is refused without
// reading, and a chunked body is read to at most limit+1 bytes.
func TestCallbackBodyCap(t *testing.T) {
	t.Parallel()
	const limit = 1000
	tests := []struct {
		name          string
		contentLength int64
		size          int64
		wantMaxRead   int64
	}{
		{name: "declared huge length", contentLength: 1 << 40, size: 10 << 20, wantMaxRead: 0},
		{name: "chunked, no length", contentLength: -1, size: 10 << 20, wantMaxRead: limit + 1},
		{name: "length understated", contentLength: 10, size: 10 << 20, wantMaxRead: limit + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var rc recorder
				h := NewCallbackHandler(WithMaxBodyBytes(limit), WithResultFunc(rc.resultFunc()))
				body := &countingReader{left: tc.size}
				req := httptest.NewRequest(http.MethodPost, "/kie/callback", body)
				req.Header.Set("Content-Type", "application/json")
				req.ContentLength = tc.contentLength

				rec := serve(h, req)

				require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
				require.LessOrEqual(t, body.read.Load(), tc.wantMaxRead)
				require.Zero(t, rc.calls.Load())
			})
		})
	}
}

// TestCallbackBodyReadError: a body that fails mid-read is a 400, not a 5xx (nothing to retry
// on our side) and the func is not called.
func TestCallbackBodyReadError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var rc recorder
		h := NewCallbackHandler(WithResultFunc(rc.resultFunc()))
		req := httptest.NewRequest(http.MethodPost, "/kie/callback", io.MultiReader(strings.NewReader(`{"code":`), errReader{}))
		req.Header.Set("Content-Type", "application/json")
		rec := serve(h, req)
		require.Equal(t, http.StatusBadRequest, rec.Code)
		require.Zero(t, rc.calls.Load())
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestCallbackUnsignedLogsOnce: without a key, unsigned callbacks are accepted and the fact
// that signing is off is logged exactly once.
func TestCallbackUnsignedLogsOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		var rc recorder
		h := NewCallbackHandler(WithCallbackLogger(logs.logger()), WithResultFunc(rc.resultFunc()))
		for i := range 3 {
			rec := serve(h, newCallbackRequest(runwayBody("t"+strconv.Itoa(i), 200, "ok"), nil))
			require.Equal(t, http.StatusOK, rec.Code)
		}
		require.EqualValues(t, 3, rc.calls.Load())
		require.Equal(t, 1, strings.Count(logs.String(), "signature verification is off"))
	})
}

// TestCallbackLogsNoSecrets runs a signed and a badly signed delivery with debug logging on and
// checks that neither key nor signature reaches the log.
// Pins CL-15 of SECURITY.md.
func TestCallbackLogsNoSecrets(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		h := NewCallbackHandler(WithHMACKey(testKey1), WithClock(fixedClock), WithCallbackLogger(logs.logger()), WithResultFunc(noopResult))
		good := sign(testKey1, testID, testNowTS)
		require.Equal(t, 200, serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), good)).Code)
		bad := sign(testKey2, "t2", testNowTS)
		require.Equal(t, 401, serve(h, newCallbackRequest(runwayBody("t2", 200, "ok"), bad)).Code)
		out := logs.String()
		assert.NotEmpty(t, out)
		for _, s := range []string{testKey1, testKey2, good[HeaderWebhookSignature], bad[HeaderWebhookSignature]} {
			require.NotContains(t, out, s)
		}
		require.True(t, bytes.Contains([]byte(out), []byte("invalid callback signature")))
	})
}

// TestCallbackHandlerConfigWarnings: a budget that does not fit in Kie's 15 s and signing
// being off are reported at error level when the handler is built, once.
func TestCallbackHandlerConfigWarnings(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	NewCallbackHandler(WithCallbackLogger(logs.logger()), WithResultTimeout(15e9), WithResultFunc(noopResult))
	require.Contains(t, logs.String(), "level=ERROR msg=\"runway: callback result timeout is not below Kie's 15 s")
	require.Contains(t, logs.String(), "level=ERROR msg=\"runway: callback signature verification is off")

	var quiet logBuffer
	NewCallbackHandler(WithCallbackLogger(quiet.logger()), WithResultTimeout(14e9), WithHMACKey(testKey1), WithResultFunc(noopResult))
	require.Empty(t, quiet.String())
}

// nestedObject is levels nested JSON objects around the number 1: {"a":{"a":...1...}}.
func nestedObject(levels int) string {
	return strings.Repeat(`{"a":`, levels) + "1" + strings.Repeat("}", levels)
}

// deepBodies are the deeply nested bodies (CB-6) for the parser tests and
// BenchmarkParseCallbackDeepNesting: a valid callback carrying 10 000 levels in an unknown field, and 1 MiB of '['.
func deepBodies() []struct {
	name string
	body []byte
} {
	return []struct {
		name string
		body []byte
	}{
		{name: "10000 levels", body: []byte(`{"code":200,"data":{"task_id":"t1"},"extra":` + nestedObject(10000) + `}`)},
		{name: "1 MiB of [", body: bytes.Repeat([]byte("["), 1<<20)},
	}
}

// TestParseCallbackDeepNesting is CB-6 on the parser: a deeply nested body is refused for its
// depth, and the work is bounded by the decoder's depth limit, not by the body: the parser
// allocates a fixed number of times and, beside its copy of the body, less than a fixed
// budget (the scanner's stack stops at 10 000 levels; decoding all of 1 MiB of '[' would
// need a stack of over 8 MB). Time is measured by BenchmarkParseCallbackDeepNesting. Not
// parallel: the memory statistics are process-wide.
func TestParseCallbackDeepNesting(t *testing.T) {
	const (
		maxAllocs = 64      // measured: 58, whatever the body's size
		maxExtra  = 2 << 20 // bytes beyond the body copy; measured: about 0.7 MiB
	)
	for _, tc := range deepBodies() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCallback(tc.body)
			require.ErrorIs(t, err, ErrInvalidCallback)
			require.ErrorContains(t, err, "exceeded max depth")

			const runs = 10
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			allocs := testing.AllocsPerRun(runs, func() {
				if _, err := ParseCallback(tc.body); err == nil {
					panic("deep body accepted")
				}
			})
			runtime.ReadMemStats(&after)
			perRun := (after.TotalAlloc - before.TotalAlloc) / (runs + 1) // AllocsPerRun warms up once
			require.LessOrEqual(t, allocs, float64(maxAllocs))
			require.Less(t, perRun, uint64(len(tc.body)+maxExtra), "bytes allocated per parse")
		})
	}
}
