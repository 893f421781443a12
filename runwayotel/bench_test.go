package runwayotel_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwayotel"
)

// benchRing is how many distinct signed callbacks the benchmarks cycle through.
const benchRing = 4096

var benchNow = time.Unix(1769670760, 0)

// acquireAll is a Deduper that lets every delivery through, so that each one runs the whole
// path (claim, publish, result func, done) however often the ring comes round.
type acquireAll struct{}

func (acquireAll) Claim(context.Context, string, time.Duration) (runway.ClaimStatus, string, error) {
	return runway.ClaimAcquired, "t", nil
}
func (acquireAll) Done(context.Context, string, string) error    { return nil }
func (acquireAll) Release(context.Context, string, string) error { return nil }

// replayBody is a request body that Reset rewinds without allocating.
type replayBody struct{ bytes.Reader }

func (*replayBody) Close() error { return nil }

type delivery struct {
	req  *http.Request
	body *replayBody
	raw  []byte
}

// deliveries builds benchRing signed success callbacks for distinct task ids.
func deliveries(b *testing.B) []*delivery {
	out := make([]*delivery, benchRing)
	for i := range out {
		id := fmt.Sprintf("ee603959-debb-48d1-98c4-%012x", i)
		raw := []byte(`{"code":200,"msg":"All generated successfully.","data":{"task_id":"` + id +
			`","video_id":"v","video_url":"https://file.example.com/v.mp4","image_url":"https://file.example.com/i.jpg"}}`)
		ts, sig := runway.SignCallback(hmacKey, id, benchNow)
		body := &replayBody{}
		req := httptest.NewRequest(http.MethodPost, "/kie/callback", nil)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(runway.HeaderWebhookTimestamp, ts)
		req.Header.Set(runway.HeaderWebhookSignature, sig)
		req.Body, req.ContentLength = body, int64(len(raw))
		out[i] = &delivery{req: req, body: body, raw: raw}
	}
	return out
}

// benchHandler delivers the ring to a client's callback handler, built with the client
// options opts, and fails on any answer but 200.
func benchHandler(b *testing.B, opts ...runway.Option) {
	c, err := runway.NewClient("bench-key", append([]runway.Option{runway.WithBaseURL("http://127.0.0.1:9")}, opts...)...)
	require.NoError(b, err)
	defer c.Close()
	h := c.CallbackHandler(runway.WithHMACKey(hmacKey), runway.WithClock(func() time.Time { return benchNow }),
		runway.WithDeduper(acquireAll{}), runway.WithResultFunc(func(context.Context, *runway.Result) error { return nil }))
	ring := deliveries(b)
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		d := ring[i%benchRing]
		d.body.Reset(d.raw)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, d.req)
		if rec.Code != http.StatusOK {
			b.Fatalf("delivery %d: status %d", i, rec.Code)
		}
		i++
	}
	// The process's CPU time per delivery, GC included: far less sensitive than ns/op to
	// other processes on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkHandlerNoObserver is the callback handler without an observer: the baseline of
// the two below.
func BenchmarkHandlerNoObserver(b *testing.B) {
	benchHandler(b)
}

// BenchmarkHandlerOtelNoop is the handler wired to runwayotel on OpenTelemetry's default
// (no-op) providers: the cost of the hooks and of runwayotel itself.
func BenchmarkHandlerOtelNoop(b *testing.B) {
	inst, err := runwayotel.New()
	require.NoError(b, err)
	benchHandler(b, inst.ClientOption())
}

// BenchmarkHandlerOtelSDK is the handler wired to runwayotel on the OpenTelemetry SDK: a
// MeterProvider with a reader and a TracerProvider that samples every span (spans are ended
// but exported nowhere).
func BenchmarkHandlerOtelSDK(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	}()
	inst, err := runwayotel.New(runwayotel.WithMeterProvider(mp), runwayotel.WithTracerProvider(tp))
	require.NoError(b, err)
	benchHandler(b, inst.ClientOption())
}
