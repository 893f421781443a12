package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v82/webhook"
)

// successTemplate is Kie's generate success callback as Kie sends it; %s is the task id.
const successTemplate = `{
  "code": 200,
  "msg": "All generated successfully.",
  "data": {
    "task_id": "%s",
    "video_id": "485da89c-7fca-4340-8c04-101025b2ae71",
    "video_url": "https://file.com/k/xxxxxxx.mp4",
    "image_url": "https://file.com/m/xxxxxxxx.png"
  }
}
`

// Secrets of the three signing schemes. They only sign and verify requests built here.
const (
	kieKey       = "bench-kie-hmac-key"
	stripeSecret = "whsec_bench_stripe_secret"
)

var standardKey = []byte("bench-standard-webhooks-key-32by")

// maxBody caps every handler's read, as the SDK's default does.
const maxBody = runway.DefaultMaxCallbackBytes

// batch is how many deliveries are built at a time, with the timer stopped.
const batch = 4096

// rebuildEvery is how many deliveries a handler serves before it is replaced (timer stopped).
// The SDK's default deduper holds at most 100 000 unexpired task ids (an hour each) and
// answers 503 once full; a fresh handler every 50 000 deliveries keeps every delivery a new
// task in every handler, whatever -benchtime asks for. The hand-written handlers are rebuilt
// on the same schedule, which also bounds their sync.Map.
const rebuildEvery = 50000

// taskSeq numbers task ids across the whole process: no id is ever delivered twice.
var taskSeq atomic.Int64

// nextTaskID is a task id shaped like Kie's (a UUID).
func nextTaskID() string {
	return fmt.Sprintf("ee603959-debb-48d1-98c4-%012x", taskSeq.Add(1))
}

// callbackBody is the success callback for taskID.
func callbackBody(taskID string) string { return fmt.Sprintf(successTemplate, taskID) }

// newRequest is the request construction every handler shares: a POST of body with a JSON
// content type, plus the scheme's signature headers.
func newRequest(body []byte, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

// A scheme signs one body for one handler: the headers its verifier reads.
type scheme func(tb testing.TB, taskID string, body []byte, now time.Time) map[string]string

// kieScheme is how Kie signs: X-Webhook-Timestamp and
// X-Webhook-Signature = base64(HMAC-SHA256(key, taskId + "." + timestamp)).
func kieScheme(_ testing.TB, taskID string, _ []byte, now time.Time) map[string]string {
	ts, sig := runway.SignCallback(kieKey, taskID, now)
	return map[string]string{runway.HeaderWebhookTimestamp: ts, runway.HeaderWebhookSignature: sig}
}

// stripeScheme is Stripe's: Stripe-Signature "t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>".
func stripeScheme(_ testing.TB, _ string, body []byte, now time.Time) map[string]string {
	p := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: stripeSecret, Timestamp: now})
	return map[string]string{"Stripe-Signature": p.Header}
}

// standardScheme is Standard Webhooks': webhook-id, webhook-timestamp and
// webhook-signature "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
func standardScheme(tb testing.TB, taskID string, body []byte, now time.Time) map[string]string {
	wh, err := standardwebhooks.NewWebhookRaw(standardKey)
	if err != nil {
		tb.Fatal(err)
	}
	id := "msg_" + taskID
	sig, err := wh.Sign(id, now, body)
	if err != nil {
		tb.Fatal(err)
	}
	return map[string]string{
		standardwebhooks.HeaderWebhookID:        id,
		standardwebhooks.HeaderWebhookTimestamp: fmt.Sprint(now.Unix()),
		standardwebhooks.HeaderWebhookSignature: sig,
	}
}

// writer is a reusable ResponseWriter that keeps the status and counts the body; every
// handler answers into the same kind, reset between deliveries.
type writer struct {
	header http.Header
	code   int
	n      int
}

func (w *writer) Header() http.Header { return w.header }

func (w *writer) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *writer) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *writer) reset() {
	clear(w.header)
	w.code, w.n = 0, 0
}

// kieCallback is what the hand-written handlers decode Kie's callback into.
type kieCallback struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data struct {
		TaskID   string `json:"task_id"`
		VideoID  string `json:"video_id"`
		VideoURL string `json:"video_url"`
		ImageURL string `json:"image_url"`
	} `json:"data"`
}

// handlerFunc builds a fresh handler whose result func counts into calls, and what to run
// when it is replaced.
type handlerFunc func(tb testing.TB, calls *atomic.Int64) (http.Handler, func())

// sdkHandler is the SDK as a service mounts it: a Client (pointed at a closed port; the API
// is never called) and its CallbackHandler with an HMAC key and a no-op result func, every
// other option at its default. Per delivery it checks method, encoding, content type and
// size, reads and decodes the body (checking its content), verifies Kie's signature and
// timestamp window, claims the task id in the default in-memory deduper (one hour TTL),
// publishes the result to the client's waiters (its in-memory result bus), runs the func
// within the result budget, marks the id done and answers 200 with a short text body.
func sdkHandler(tb testing.TB, calls *atomic.Int64) (http.Handler, func()) {
	return newSDKHandler(tb, runway.WithResultFunc(func(context.Context, *runway.Result) error {
		calls.Add(1)
		return nil
	}))
}

// newSDKHandler is sdkHandler's construction with opts after its own (a later option wins).
func newSDKHandler(tb testing.TB, opts ...runway.CallbackOption) (http.Handler, func()) {
	c, err := runway.NewClient("bench-api-key", runway.WithBaseURL("http://127.0.0.1:9"))
	if err != nil {
		tb.Fatal(err)
	}
	h := c.CallbackHandler(append([]runway.CallbackOption{runway.WithHMACKey(kieKey)}, opts...)...)
	return h, func() { _ = c.Close() }
}

// stripeHandler is what a user writes with stripe-go's webhook package: refuse a method other
// than POST, read the body under a cap, verify the Stripe-Signature header over
// "timestamp.body" (ValidatePayload: HMAC-SHA256, five-minute tolerance), decode the JSON,
// require a task id, dedupe the id in a sync.Map (LoadOrStore; forgotten again if the func
// fails), call the func and answer 200 with no body.
func stripeHandler(_ testing.TB, calls *atomic.Int64) (http.Handler, func()) {
	fn := func(context.Context, *kieCallback) error { calls.Add(1); return nil }
	var seen sync.Map
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := webhook.ValidatePayload(body, r.Header.Get("Stripe-Signature"), stripeSecret); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		dedupeAndCall(w, r, body, &seen, fn)
	}), func() {}
}

// standardHandler is the same handler verifying with the Standard Webhooks Go library
// (Webhook.Verify: the three webhook-* headers, HMAC-SHA256 over "id.timestamp.body",
// five-minute tolerance) instead of stripe-go.
func standardHandler(tb testing.TB, calls *atomic.Int64) (http.Handler, func()) {
	wh, err := standardwebhooks.NewWebhookRaw(standardKey)
	if err != nil {
		tb.Fatal(err)
	}
	fn := func(context.Context, *kieCallback) error { calls.Add(1); return nil }
	var seen sync.Map
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		dedupeAndCall(w, r, body, &seen, fn)
	}), func() {}
}

// dedupeAndCall is the part the two hand-written handlers share after verification.
func dedupeAndCall(w http.ResponseWriter, r *http.Request, body []byte, seen *sync.Map, fn func(context.Context, *kieCallback) error) {
	var cb kieCallback
	if err := json.Unmarshal(body, &cb); err != nil || cb.Data.TaskID == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if _, dup := seen.LoadOrStore(cb.Data.TaskID, struct{}{}); dup {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := fn(r.Context(), &cb); err != nil {
		seen.Delete(cb.Data.TaskID)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// floorHandler is the least any callback handler does: read the body under a cap, decode it,
// answer 200. No signature, no dedupe, no func.
func floorHandler(_ testing.TB, calls *atomic.Int64) (http.Handler, func()) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var cb kieCallback
		if err := json.Unmarshal(body, &cb); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		calls.Add(1) // the same counter cost as the others' no-op func
		w.WriteHeader(http.StatusOK)
	}), func() {}
}

// BenchmarkCallbackHandlers delivers Kie's success callback, a new task id each time, to the
// SDK's handler and to the three a user would write instead, in one process. Every handler
// gets the same body; each request carries the signature headers of that handler's scheme,
// timestamped when its batch is built. Requests are built in batches with the timer stopped
// and served in-process through ServeHTTP; every answer must be 200 and every delivery must
// reach the func (none takes a duplicate path).
func BenchmarkCallbackHandlers(b *testing.B) {
	quietSDKLogs()
	for _, bc := range handlerCases {
		b.Run(bc.name, func(b *testing.B) { runDeliveries(b, bc.scheme, bc.build) })
	}
}

// handlerCases are the four handlers, each with the signing scheme its requests carry.
var handlerCases = []struct {
	name   string
	scheme scheme
	build  handlerFunc
}{
	{"sdk", kieScheme, sdkHandler},
	{"stripe", stripeScheme, stripeHandler},
	{"standardwebhooks", standardScheme, standardHandler},
	{"floor", kieScheme, floorHandler},
}

// quietSDKLogs keeps the default logger at info level, as a service does: the SDK logs
// routine events at debug level, and those records are dropped the usual way.
func quietSDKLogs() { slog.SetLogLoggerLevel(slog.LevelInfo) }

func runDeliveries(b *testing.B, sign scheme, build handlerFunc) {
	var calls atomic.Int64
	var h http.Handler
	closeHandler := func() {}
	defer func() { closeHandler() }()
	w := &writer{header: make(http.Header)}
	var reqs []*http.Request
	served := 0
	var cpu time.Duration // CPU time spent while the timer runs
	b.ReportAllocs()
	b.ResetTimer()
	started := cpuTime()
	for i := 0; i < b.N; i++ {
		if len(reqs) == 0 || served%rebuildEvery == 0 {
			cpu += cpuTime() - started
			b.StopTimer()
			if served%rebuildEvery == 0 {
				closeHandler()
				h, closeHandler = build(b, &calls)
			}
			if len(reqs) == 0 {
				reqs = buildBatch(b, sign, min(batch, b.N-i))
			}
			b.StartTimer()
			started = cpuTime()
		}
		r := reqs[0]
		reqs[0] = nil // let a served request go
		reqs = reqs[1:]
		w.reset()
		h.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("delivery %d answered %d, want 200", i, w.code)
		}
		served++
	}
	cpu += cpuTime() - started
	b.StopTimer()
	// cpu-ns/op: the process's CPU time per delivery while the timer ran, GC and every
	// goroutine included (batches are built with the timer stopped, and not counted).
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	closeHandler() // the SDK's func may still be finishing on another goroutine
	closeHandler = func() {}
	if got := calls.Load(); got != int64(b.N) {
		b.Fatalf("the func ran %d times for %d new deliveries", got, b.N)
	}
}

// buildBatch builds n deliveries of the success callback, each for a new task id, signed with
// sign at the current time.
func buildBatch(tb testing.TB, sign scheme, n int) []*http.Request {
	now := time.Now()
	out := make([]*http.Request, n)
	for i := range out {
		id := nextTaskID()
		body := []byte(callbackBody(id))
		out[i] = newRequest(body, sign(tb, id, body, now))
	}
	return out
}
