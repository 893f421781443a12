package runwaytest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/b9c9aec2/runway-go/runwaytest"
)

// BenchmarkTasksWithCallbacks measures 1 000 concurrent submissions through the real client,
// each walking the default steps and delivering its callback, until the server is idle.
func BenchmarkTasksWithCallbacks(b *testing.B) {
	for b.Loop() {
		srv := runwaytest.NewServer(runwaytest.WithRetryIntervals(time.Millisecond))
		rc := newBenchReceiver(b)
		c := benchClient(b, srv)
		var wg sync.WaitGroup
		for range 1000 {
			wg.Go(func() {
				if _, err := c.Generate(context.Background(), genReq(rc)); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		if err := srv.WaitIdle(context.Background()); err != nil {
			b.Fatal(err)
		}
		srv.Close()
	}
}
