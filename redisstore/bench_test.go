package redisstore

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

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

// BenchmarkCallbackToWaiter measures the hand-off through the real pieces: a callback POST
// into one client's CallbackHandler until a WaitForResult blocked on another client returns.
// "cross-replica": two clients, each with its own Store on one Redis, the handler deduping
// through Redis. "in-process": one client with the default MemoryResultBus and deduper. Each
// op times only the hand-off; starting the waiter and its first poll are excluded.
func BenchmarkCallbackToWaiter(b *testing.B) {
	b.Run("cross-replica", func(b *testing.B) {
		rdb := sharedRedis(b).client(b)
		prefix := uniquePrefix(b)
		storeA, storeB := New(rdb, WithPrefix(prefix)), New(rdb, WithPrefix(prefix))
		b.Cleanup(func() { _ = storeA.Close(); _ = storeB.Close() })
		a, _ := benchClient(b, storeA)
		waiter, polled := benchClient(b, storeB)
		waitFor(b, "subscribers", func(ctx context.Context) bool {
			m, err := rdb.PubSubNumSub(ctx, storeA.channel()).Result()
			return err == nil && m[storeA.channel()] == 2
		})
		benchCallbackToWaiter(b, a.CallbackHandler(runway.WithDeduper(storeA)), waiter, polled)
	})
	b.Run("in-process", func(b *testing.B) {
		c, polled := benchClient(b, runway.NewMemoryResultBus(0, 0))
		benchCallbackToWaiter(b, c.CallbackHandler(), c, polled)
	})
}

func benchCallbackToWaiter(b *testing.B, h http.Handler, waiter *runway.Client, polled <-chan struct{}) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		r := benchResult(i)
		done := make(chan error, 1)
		go func() {
			_, err := waiter.WaitForResult(ctx, r.TaskID, runway.WithPollInterval(time.Hour))
			done <- err
		}()
		<-polled // registered, and about to sleep for an hour
		req := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(r.Raw))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		served := make(chan struct{})
		b.StartTimer()
		go func() {
			defer close(served)
			h.ServeHTTP(rec, req)
		}()
		err := <-done
		b.StopTimer()
		<-served
		if err != nil || rec.Code != http.StatusOK {
			b.Fatalf("wait: %v, callback answered %d", err, rec.Code)
		}
	}
}

// benchClient returns a client on bus whose API answers every poll, in process, with a task
// still generating; polled receives a value at each poll.
func benchClient(b *testing.B, bus runway.ResultBus) (*runway.Client, <-chan struct{}) {
	polled := make(chan struct{})
	c, err := runway.NewClient("bench-key", runway.WithBaseURL("https://api.kie.test"),
		runway.WithHTTPClient(&http.Client{Transport: generatingAPI(polled)}), runway.WithResultBus(bus))
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	return c, polled
}

// generatingAPI is an in-process http.RoundTripper reporting every task as generating.
type generatingAPI chan<- struct{}

func (api generatingAPI) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(rec, `{"code":200,"msg":"success","data":{"taskId":"`+req.URL.Query().Get("taskId")+`","state":"generating"}}`)
	resp := rec.Result()
	resp.Request = req
	api <- struct{}{}
	return resp, nil
}
