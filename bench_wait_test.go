package runway

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

// handlerTransport serves requests in process through h, so a benchmark's polls cost no
// sockets.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// generatingAPI answers every details request with the asked task in state generating.
func generatingAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"code":200,"msg":"success","data":{"taskId":"` + r.URL.Query().Get("taskId") + `","state":"generating"}}`))
}

// BenchmarkCallbackToWaiter is the time from a callback entering ServeHTTP to the
// WaitForResult blocked on its task returning (ns/wake; ns/op also counts the benchmark
// goroutine being told). Waiters are started in batches, each polls once (the API says
// generating) and then blocks until its callback: the result must come as a hand-off, not
// by polling.
func BenchmarkCallbackToWaiter(b *testing.B) {
	c := newOfflineClient(b, WithHTTPClient(&http.Client{Transport: handlerTransport{http.HandlerFunc(generatingAPI)}}))
	h := c.CallbackHandler(WithHMACKey(testKey1), WithClock(fixedClock), WithDeduper(benchDeduper()),
		WithResultFunc(func(context.Context, *Result) error { return nil }))
	const batch = 64
	var total time.Duration
	b.ReportAllocs()
	b.StopTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		cbs := benchCallbacks(b, done, n)
		woke := make(chan time.Time)
		var polled sync.WaitGroup
		polled.Add(n)
		for i := range n {
			id := benchTaskID(done + i)
			var once sync.Once
			go func() {
				r, err := c.WaitForResult(context.Background(), id, WithPollInterval(time.Hour),
					WithProgress(func(*Task) { once.Do(polled.Done) }))
				at := time.Now()
				if err != nil || r.Source != SourceCallback {
					b.Errorf("wait %s: %v, %+v", id, err, r)
				}
				woke <- at
			}()
		}
		polled.Wait()
		WaitParked(n, "select", ".(*Client).WaitForResult(") // on its channel and timer
		for _, cb := range cbs {
			b.StartTimer()
			start := time.Now()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, cb.next())
			at := <-woke
			b.StopTimer()
			if rec.Code != http.StatusOK {
				b.Fatalf("callback: status %d", rec.Code)
			}
			total += at.Sub(start)
		}
		done += n
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/wake")
}

// WaitParked returns once at least n goroutines are parked in the given state, as a goroutine
// dump prints it ("select", "chan receive"), inside a function whose printed frame contains
// fn: the event a benchmark waits for instead of sleeping. It yields the processor between
// looks. Exported for the runway_test benchmarks.
func WaitParked(n int, state, fn string) {
	for parkedGoroutines(state, fn) < n {
		runtime.Gosched()
	}
}

// parkedGoroutines counts the goroutines WaitParked looks for, in a dump of all goroutines.
func parkedGoroutines(state, fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		header, stack, _ := bytes.Cut(g, []byte("\n"))
		_, st, ok := bytes.Cut(header, []byte(" ["))
		if ok && (bytes.HasPrefix(st, []byte(state+"]")) || bytes.HasPrefix(st, []byte(state+","))) &&
			bytes.Contains(stack, []byte(fn)) {
			count++
		}
	}
	return count
}
