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

// BenchmarkCallbackLoad serves the documented success callback from a real http.Server on
// 127.0.0.1, once with the SDK's handler (sdk) and once with the hand-written one (baseline),
// driven by the same client, and reports requests per second and the 99th percentile
// latency. The two sub-benchmarks alternate under -count, so both see the same machine load.
func BenchmarkCallbackLoad(b *testing.B) {
	ring := benchCallbacks(b, 0, loadRound)
	b.Run("sdk", func(b *testing.B) { benchLoad(b, sdkCallbackHandler(b), ring) })
	b.Run("baseline", func(b *testing.B) { benchLoad(b, http.HandlerFunc(baselineHandler), ring) })
}

func benchLoad(b *testing.B, h http.Handler, ring []*benchCallback) {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxConnsPerHost: loadConns, MaxIdleConnsPerHost: loadConns, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	url := srv.URL + "/kie/callback"

	lat := make([]time.Duration, 0, loadRound)
	var elapsed time.Duration
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		round := make([]time.Duration, loadRound)
		var next atomic.Int64
		var failed atomic.Value
		var wg sync.WaitGroup
		start := time.Now()
		for range loadConns {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < loadRound; i = next.Add(1) - 1 {
					cb := ring[i]
					req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(cb.raw))
					if err != nil {
						failed.Store(err.Error())
						return
					}
					req.Header = cb.req.Header
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						failed.Store(err.Error())
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					round[i] = time.Since(t0)
					if resp.StatusCode != http.StatusOK {
						failed.Store(resp.Status)
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed += time.Since(start)
		if msg := failed.Load(); msg != nil {
			b.Fatalf("load: %v", msg)
		}
		lat = append(lat, round...)
	}
	reportCPU(b, cpu)
	slices.Sort(lat)
	reqs := float64(b.N) * loadRound
	b.ReportMetric(reqs/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
