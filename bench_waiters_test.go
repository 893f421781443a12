package runway_test

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// Shape of BenchmarkWaiters10k.
const (
	waiters      = 10_000
	waitInterval = time.Second // the shortest WithPollInterval accepts
	pollPhase    = 5 * waitInterval
	waiterConns  = 64 // connections the client may open to the fake
)

// BenchmarkWaiters10k runs 10 000 concurrent WaitForResult calls on distinct tasks against
// runwaytest (manual steps: the tasks never finish; no callbacks). It reports:
//
//   - heap-B/waiter: live heap with every waiter blocked after its first poll (poll interval
//     one hour), minus the live heap with as many goroutines blocked on a channel, per
//     waiter; stack-B/waiter is the same difference for goroutine stacks;
//   - peak/avg: with a one-second poll interval for 5 s, the most polls the fake received in
//     any one-interval window divided by the average per interval, over the time after the
//     first interval (the first polls all start together, by design: a finished task must
//     return at once); peak/avg-0.1 is the same with windows of a tenth of the interval.
func BenchmarkWaiters10k(b *testing.B) {
	srv := runwaytest.NewServer(runwaytest.WithManualSteps())
	b.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = waiterConns, waiterConns
	b.Cleanup(tr.CloseIdleConnections)
	c, err := runway.NewClient(srv.APIKey, runway.WithBaseURL(srv.URL),
		runway.WithHTTPClient(&http.Client{Transport: tr}), runway.WithSubmitRateLimit(0, 0))
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	ids := submitTasks(b, c, waiters)

	for b.Loop() {
		heapPer, stackPer := waiterMemory(b, srv, c, ids)
		ratio, fine := pollSpread(b, srv, c, ids)
		b.ReportMetric(heapPer, "heap-B/waiter")
		b.ReportMetric(stackPer, "stack-B/waiter")
		b.ReportMetric(ratio, "peak/avg")
		b.ReportMetric(fine, "peak/avg-0.1")
	}
}

// submitTasks creates n tasks through c, 32 at a time.
func submitTasks(b *testing.B, c *runway.Client, n int) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				id, err := c.Generate(b.Context(), runway.GenerateRequest{Prompt: "a cat surfing", Duration: 5,
					Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9, CallBackURL: "http://127.0.0.1:9/cb"})
				if err != nil {
					b.Error(err)
				}
				ids[i] = id
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids
}

// waitAll starts one WaitForResult per id with the given poll interval; they end with ctx.
func waitAll(c *runway.Client, ids []string, interval time.Duration, ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			_, _ = c.WaitForResult(ctx, id, runway.WithPollInterval(interval), runway.WithWaitTimeout(0))
		})
	}
	return &wg
}

// detailPolls returns the record-detail requests the fake has answered.
func detailPolls(srv *runwaytest.Server) []runwaytest.Request {
	var out []runwaytest.Request
	for _, r := range srv.Requests() {
		if r.Path == runwaytest.PathRecordDetail {
			out = append(out, r)
		}
	}
	return out
}

// memory returns the live heap and the goroutine stacks after a full collection.
func memory() (heap, stack uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// waiterMemory measures heap and stack per blocked waiter beyond a goroutine blocked on a
// channel.
func waiterMemory(b *testing.B, srv *runwaytest.Server, c *runway.Client, ids []string) (heapPer, stackPer float64) {
	before := len(detailPolls(srv))
	ctx, cancel := context.WithCancel(b.Context())
	wg := waitAll(c, ids, time.Hour, ctx)
	_, err := srv.WaitRequests(b.Context(), runwaytest.PathRecordDetail, before+len(ids))
	require.NoError(b, err)
	runway.WaitParked(len(ids), "select", ".(*Client).WaitForResult(") // on its channel and timer
	heapW, stackW := memory()
	cancel()
	wg.Wait()

	block := make(chan struct{})
	var idle sync.WaitGroup
	for range ids {
		idle.Go(func() { <-block })
	}
	runway.WaitParked(len(ids), "chan receive", "waiterMemory.func")
	heapB, stackB := memory()
	close(block)
	idle.Wait()
	n := float64(len(ids))
	return (float64(heapW) - float64(heapB)) / n, (float64(stackW) - float64(stackB)) / n
}

// pollSpread runs every waiter with a one-second interval for pollPhase and returns the peak
// to average poll count over windows of one interval and of a tenth of it.
func pollSpread(b *testing.B, srv *runwaytest.Server, c *runway.Client, ids []string) (ratio, fine float64) {
	before := len(detailPolls(srv))
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.Context(), pollPhase)
	wg := waitAll(c, ids, waitInterval, ctx)
	wg.Wait()
	cancel()
	end := start.Add(pollPhase)

	var times []time.Time
	for _, r := range detailPolls(srv)[before:] {
		if !r.Time.Before(start.Add(waitInterval)) && r.Time.Before(end) {
			times = append(times, r.Time)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	return peakOverAverage(times, start.Add(waitInterval), end, waitInterval),
		peakOverAverage(times, start.Add(waitInterval), end, waitInterval/10)
}

// peakOverAverage slides a window of length w over [from, to) in steps of w/100 and returns
// the largest count of sorted times inside it divided by the average count per w.
func peakOverAverage(times []time.Time, from, to time.Time, w time.Duration) float64 {
	if len(times) == 0 || to.Sub(from) < w {
		return 0
	}
	peak := 0
	for t := from; !t.Add(w).After(to); t = t.Add(w / 100) {
		lo, _ := slices.BinarySearchFunc(times, t, func(a, b time.Time) int { return a.Compare(b) })
		hi, _ := slices.BinarySearchFunc(times, t.Add(w), func(a, b time.Time) int { return a.Compare(b) })
		peak = max(peak, hi-lo)
	}
	avg := float64(len(times)) / (float64(to.Sub(from)) / float64(w))
	return float64(peak) / avg
}
