package runway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchRing is how many distinct signed callbacks the handler benchmarks cycle through. The
// SDK handler's deduper forgets a task id long before it comes round again (see
// benchDeduper), and the client's result bus keeps fewer (DefaultMaxKeptResults), so every
// delivery is a new task everywhere: claim, publish (evicting the oldest result), func, done.
const benchRing = 16384

// benchBody is the body of a replayed request; Reset rewinds it without allocating.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// benchCallback is one prebuilt signed delivery.
type benchCallback struct {
	req  *http.Request
	body *benchBody
	raw  []byte
}

// next rewinds the request's body for another delivery.
func (c *benchCallback) next() *http.Request {
	c.body.Reset(c.raw)
	return c.req
}

// benchTaskID is a task id shaped like Kie's (a UUID), distinct for each i.
func benchTaskID(i int) string {
	return fmt.Sprintf("ee603959-debb-48d1-98c4-%012x", i)
}

// successCallback is the documented generate success callback with its task id replaced.
func successCallback(tb testing.TB, taskID string) []byte {
	tb.Helper()
	raw, err := os.ReadFile("testdata/callbacks/generate_success.json")
	require.NoError(tb, err)
	out := bytes.ReplaceAll(raw, []byte(testID), []byte(taskID))
	require.Contains(tb, string(out), `"task_id": "`+taskID+`"`)
	return out
}

// benchCallbacks builds n signed deliveries of the success callback for distinct task ids,
// starting at id number from. The requests are built once so that neither the SDK nor the
// baseline benchmark pays for building them.
func benchCallbacks(tb testing.TB, from, n int) []*benchCallback {
	tb.Helper()
	out := make([]*benchCallback, n)
	for i := range out {
		id := benchTaskID(from + i)
		raw := successCallback(tb, id)
		body := &benchBody{}
		req := newCallbackRequest("", sign(testKey1, id, testNowTS))
		req.Body, req.ContentLength = body, int64(len(raw))
		out[i] = &benchCallback{req: req, body: body, raw: raw}
	}
	return out
}

// benchDeduper is the memory deduper on a clock that advances 1 ms per reading (two readings
// per delivery), with a one-second retention: about 500 task ids are remembered at any time
// and an id comes round again (after benchRing deliveries) long after it expired. It is the
// default deduper's code with a retention that keeps a long benchmark bounded.
func benchDeduper() *memoryDeduper {
	var ticks atomic.Int64
	now := func() time.Time { return testNow.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	return newMemoryDeduper(time.Second, maxMemoryDedupeKeys, now)
}

// sdkCallbackHandler is the SDK path as a service mounts it: a client's handler with an HMAC
// key, the memory deduper, publishing to the client's waiters and a result func.
func sdkCallbackHandler(tb testing.TB) http.Handler {
	c := newOfflineClient(tb)
	return c.CallbackHandler(WithHMACKey(testKey1), WithClock(fixedClock), WithDeduper(benchDeduper()),
		WithResultFunc(func(context.Context, *Result) error { return nil }))
}

// baselineCallback is what a hand-written handler decodes Kie's success callback into.
type baselineCallback struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data struct {
		TaskID   string `json:"task_id"`
		VideoID  string `json:"video_id"`
		VideoURL string `json:"video_url"`
		ImageURL string `json:"image_url"`
	} `json:"data"`
}

// baselineHandler does only what any callback handler must: cap and read the body, decode
// it, answer 200.
func baselineHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, DefaultMaxCallbackBytes))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var cb baselineCallback
	if err := json.Unmarshal(body, &cb); err != nil || cb.Data.TaskID == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// benchServe delivers the ring of callbacks to h round and round through a fresh
// httptest.ResponseRecorder each time, failing on any answer but 200. ServeHTTP is called
// directly, so the SDK's handler processes each delivery on a goroutine of its own (see
// answersEarly); benchServeHTTP1 serves the ring as net/http's HTTP/1.x server would.
func benchServe(b *testing.B, h http.Handler) {
	benchServeRing(b, h, benchCallbacks(b, 0, benchRing), false)
}

// benchServeHTTP1 is benchServe through a recorder that stands for net/http's HTTP/1.x writer
// (it sends what is flushed at once: sendsFlushed), so the SDK's handler processes each
// delivery on the request's goroutine.
func benchServeHTTP1(b *testing.B, h http.Handler) {
	benchServeRing(b, h, benchCallbacks(b, 0, benchRing), true)
}

// http1Recorder is a recorder marked as sending what is flushed (see sendsFlushed).
type http1Recorder struct{ *httptest.ResponseRecorder }

func (http1Recorder) sendsFlushed() {}

func benchServeRing(b *testing.B, h http.Handler, ring []*benchCallback, http1 bool) {
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		rec := httptest.NewRecorder()
		if http1 {
			h.ServeHTTP(http1Recorder{rec}, ring[i%benchRing].next())
		} else {
			h.ServeHTTP(rec, ring[i%benchRing].next())
		}
		if rec.Code != http.StatusOK {
			b.Fatalf("delivery %d: status %d", i, rec.Code)
		}
		i++
	}
	reportCPU(b, cpu)
}

// reportCPU reports the process's CPU time per op since cpu (cpu-ns/op): GC and every
// goroutine included, and far less sensitive to other processes than ns/op.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkCallbackHandler is the SDK's whole callback path for a new task: method, encoding
// and type checks, body cap, decode and classification, HMAC verification, dedupe claim and
// done, publishing to the client's waiters and a no-op result func. Compare with
// BenchmarkCallbackBaseline (same body, same recorder).
func BenchmarkCallbackHandler(b *testing.B) {
	benchServe(b, sdkCallbackHandler(b))
}

// BenchmarkCallbackHandlerHTTP1 is BenchmarkCallbackHandler with the requests as net/http's
// HTTP/1.x server hands them over: the delivery is processed on the request's goroutine.
func BenchmarkCallbackHandlerHTTP1(b *testing.B) {
	benchServeHTTP1(b, sdkCallbackHandler(b))
}

// BenchmarkCallbackHandlerDuplicate is a redelivery of a processed task: answered from the
// deduper, the result func does not run.
func BenchmarkCallbackHandlerDuplicate(b *testing.B) {
	h := NewCallbackHandler(WithHMACKey(testKey1), WithClock(fixedClock),
		WithResultFunc(func(context.Context, *Result) error { return nil }))
	cb := benchCallbacks(b, 0, 1)[0]
	require.Equal(b, http.StatusOK, serve(h, cb.next()).Code)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, cb.next())
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkCallbackBaseline is the hand-written handler the SDK's is measured against.
func BenchmarkCallbackBaseline(b *testing.B) {
	benchServe(b, http.HandlerFunc(baselineHandler))
}

// BenchmarkParseCallback decodes the documented success callback.
func BenchmarkParseCallback(b *testing.B) {
	body := successCallback(b, testID)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := ParseCallback(body); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkParseCallbackBaseline is json.Unmarshal of the same body into a plain struct.
func BenchmarkParseCallbackBaseline(b *testing.B) {
	body := successCallback(b, testID)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		var cb baselineCallback
		if err := json.Unmarshal(body, &cb); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkParseCallbackDeepNesting is CB-6's "bounded time": refusing a valid callback that
// carries 10 000 nested levels, and 1 MiB of '[', costs a fixed amount of work set by the
// decoder's depth limit: the second body is 17 times larger and costs about twice as
// much, the difference being the parser's copy of the body.
func BenchmarkParseCallbackDeepNesting(b *testing.B) {
	for _, bc := range deepBodies() {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, err := ParseCallback(bc.body); err == nil {
					b.Fatal("deep body accepted")
				}
			}
		})
	}
}

// FuzzParseCallbackFastPath: the fast path (strings cut from one copy of the body) agrees with
// the strict decoder on every input: the same result, the same Aleph flag, the same error.
func FuzzParseCallbackFastPath(f *testing.F) {
	entries, err := os.ReadDir("testdata/callbacks")
	require.NoError(f, err)
	for _, e := range entries {
		b, err := os.ReadFile("testdata/callbacks/" + e.Name())
		require.NoError(f, err)
		f.Add(b)
	}
	for _, s := range []string{
		`{"code":200,"msg":"a\"b","data":{"task_id":"t1"}}`,
		`{"code":200,"msg":"caf\u00e9 é","data":{"task_id":"t1"}}`,
		`{"code":200,"msg":"a","msg":null,"data":{"task_id":"t1","task_id":null}}`,
		`{"code":200,"msg":5,"data":{"task_id":"t1"}}`,
		`{"code":200,"data":{"task_id":"t1","video_url":{"x":1}}}`,
		`{"code":200,"taskId":"t2","data":null}`,
		`{"code":200,"taskId":"t2","data":{"task_id":"t3"}}`,
		`{"CODE":200,"Data":{"TASK_ID":"t4"}}`,
		`{"code":200,"data":{"task_id":"` + "\xff" + `"}}`,
		`{"code":"200","data":{"task_id":"t5"}}`,
		`{"code":200,"data":{"task_id":""},"taskId":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, fastAleph, fastErr := parseCallback(bytes.Clone(body))
		strict, strictAleph, strictErr := parseCallbackStrict(bytes.Clone(body))
		if strictErr != nil {
			require.Error(t, fastErr)
			require.Equal(t, strictErr.Error(), fastErr.Error())
			return
		}
		require.NoError(t, fastErr)
		require.Equal(t, strictAleph, fastAleph)
		require.Equal(t, *strict, *fast)
	})
}
