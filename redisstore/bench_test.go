package redisstore

import (
	"context"
	"strconv"
	"testing"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/stretchr/testify/require"
)

// benchResult is a typical callback result, Raw included.
func benchResult(i int) *runway.Result {
	id := "bench-" + strconv.Itoa(i)
	return &runway.Result{
		TaskID: id, VideoID: "v-" + id, Code: 200, Message: "success", Source: runway.SourceCallback,
		VideoURL: "https://file.example/" + id + ".mp4", ImageURL: "https://file.example/" + id + ".jpg",
		Raw: []byte(`{"code":200,"msg":"success","data":{"task_id":"` + id + `","video_id":"v","video_url":"https://file.example/v.mp4","image_url":"https://file.example/v.jpg"}}`),
	}
}

// BenchmarkHandoffCrossReplica measures Publish on one Store until the result reaches a
// listener on another Store (another replica): one script round trip plus pub/sub delivery.
func BenchmarkHandoffCrossReplica(b *testing.B) {
	srv := sharedRedis(b)
	prefix := uniquePrefix(b)
	pub := New(srv.client(b), WithPrefix(prefix))
	sub := New(srv.client(b), WithPrefix(prefix))
	b.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
	got := make(chan *runway.Result, 1)
	defer sub.Listen(func(r *runway.Result) { got <- r })()
	waitFor(b, "subscriber", func(ctx context.Context) bool {
		m, err := pub.rdb.PubSubNumSub(ctx, pub.channel()).Result()
		return err == nil && m[pub.channel()] == 1
	})
	results := make([]*runway.Result, 1024)
	for i := range results {
		results[i] = benchResult(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := results[i%len(results)]
		require.NoError(b, pub.Publish(ctx, r))
		if got := <-got; got.TaskID != r.TaskID {
			b.Fatalf("got %s, want %s", got.TaskID, r.TaskID)
		}
	}
}

// BenchmarkHandoffInProcess is the same hand-off through the root package's in-memory bus,
// for comparison.
func BenchmarkHandoffInProcess(b *testing.B) {
	bus := runway.NewMemoryResultBus(0, 0)
	got := make(chan *runway.Result, 1)
	defer bus.Listen(func(r *runway.Result) { got <- r })()
	results := make([]*runway.Result, 1024)
	for i := range results {
		results[i] = benchResult(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := results[i%len(results)]
		require.NoError(b, bus.Publish(ctx, r))
		<-got
	}
}
