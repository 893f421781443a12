package runway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Load benchmark shape: loadConns keep-alive connections, each driven by one goroutine that
// sends its next request as soon as the previous answer is read; one op is loadRound requests
// with distinct task ids.
const (
	loadConns = 32
	loadRound = 4096
)

// BenchmarkCallbackLoad serves the documented success callback from two real http.Servers on
// 127.0.0.1, one with the SDK's handler and one with the hand-written baseline, driven by the
// same client. Each op sends one round to each server, in alternating order, so both see the
// same machine load; it reports requests per second (sdk-req/s, base-req/s and their ratio,
// req/s-ratio), the 99th percentile latency of each, and the process CPU time per request of
// each (sdk-cpu-µs/req, base-cpu-µs/req).
func BenchmarkCallbackLoad(b *testing.B) {
	ring := benchCallbacks(b, 0, loadRound)
	sdk := newLoadTarget(b, sdkCallbackHandler(b))
	base := newLoadTarget(b, http.HandlerFunc(baselineHandler))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			sdk.round(b, ring)
			base.round(b, ring)
		} else {
			base.round(b, ring)
			sdk.round(b, ring)
		}
	}
	b.ReportMetric(sdk.rate(), "sdk-req/s")
	b.ReportMetric(base.rate(), "base-req/s")
	b.ReportMetric(sdk.rate()/base.rate(), "req/s-ratio")
	b.ReportMetric(sdk.p99(), "sdk-p99-µs")
	b.ReportMetric(base.p99(), "base-p99-µs")
	b.ReportMetric(sdk.cpuPerRequest(), "sdk-cpu-µs/req")
	b.ReportMetric(base.cpuPerRequest(), "base-cpu-µs/req")
}

// loadTarget is one server under load and what its rounds measured.
type loadTarget struct {
	url     string
	client  *http.Client
	lat     []time.Duration
	elapsed time.Duration
	cpu     time.Duration
}

func newLoadTarget(b *testing.B, h http.Handler) *loadTarget {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxConnsPerHost: loadConns, MaxIdleConnsPerHost: loadConns, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &loadTarget{url: srv.URL + "/kie/callback", client: &http.Client{Transport: tr}}
}

// round sends every callback of ring once over loadConns connections.
func (t *loadTarget) round(b *testing.B, ring []*benchCallback) {
	lat := make([]time.Duration, len(ring))
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	cpu, start := cpuTime(), time.Now()
	for range loadConns {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(ring)); i = next.Add(1) - 1 {
				cb := ring[i]
				req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(cb.raw))
				if err != nil {
					failed.Store(err.Error())
					return
				}
				req.Header = cb.req.Header
				t0 := time.Now()
				resp, err := t.client.Do(req)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					failed.Store(resp.Status)
					return
				}
			}
		})
	}
	wg.Wait()
	t.elapsed += time.Since(start)
	t.cpu += cpuTime() - cpu
	if msg := failed.Load(); msg != nil {
		b.Fatalf("load: %v", msg)
	}
	t.lat = append(t.lat, lat...)
}

func (t *loadTarget) rate() float64 { return float64(len(t.lat)) / t.elapsed.Seconds() }

func (t *loadTarget) p99() float64 {
	slices.Sort(t.lat)
	return float64(t.lat[len(t.lat)*99/100].Microseconds())
}

func (t *loadTarget) cpuPerRequest() float64 {
	return float64(t.cpu.Microseconds()) / float64(len(t.lat))
}
