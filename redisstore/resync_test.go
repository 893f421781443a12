package redisstore

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// gate holds a go-redis client's new connections while shut, so that a test decides when a
// Store may reconnect.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *gate) lift() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

func (g *gate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// OnResync functions run after the first subscription and after every re-subscription,
// with a context that ends when the Store closes; a stopped one is not called.
func TestOnResyncAfterEverySubscription(t *testing.T) {
	t.Parallel()
	srv := dedicatedRedis(t)
	s := New(srv.client(t), WithReconnectBackoff(time.Millisecond, 20*time.Millisecond))
	resyncs := make(chan context.Context, 4)
	defer s.OnResync(func(ctx context.Context) { resyncs <- ctx })()
	s.OnResync(func(context.Context) { t.Error("a stopped OnResync function was called") })()
	listen(t, s)
	first := nextResync(t, resyncs)
	waitSubscribers(t, s, 1)

	srv.kill()
	require.NoError(t, srv.start())
	nextResync(t, resyncs)
	require.NoError(t, s.Close())
	require.Error(t, first.Err(), "the context ends with the Store")
	require.Empty(t, resyncs)
}

func nextResync(t *testing.T, ch <-chan context.Context) context.Context {
	t.Helper()
	select {
	case ctx := <-ch:
		return ctx
	case <-time.After(10 * time.Second):
		t.Fatal("no resync")
		return nil
	}
}

// The gap, end to end: a replica's subscription is down (Redis killed, restarted, and the
// replica kept from reconnecting) while another replica publishes a result. The waiter on the
// first replica polls only hourly and its Store never sees the message, yet it returns as soon
// as the Store re-subscribes, through the client's resync lookup, without polling again.
func TestResyncDeliversResultsPublishedDuringTheGap(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := dedicatedRedis(t)
	api := runwaytest.NewServer(runwaytest.WithManualSteps())
	t.Cleanup(api.Close)
	fast := WithReconnectBackoff(time.Millisecond, 20*time.Millisecond)
	other := New(srv.client(t), fast)
	t.Cleanup(func() { _ = other.Close() })
	g := newGate()
	gated := redis.NewClient(&redis.Options{Addr: srv.addr, ContextTimeoutEnabled: true, Dialer: g.dial})
	t.Cleanup(func() { _ = gated.Close() })
	store := New(gated, fast)
	t.Cleanup(func() { _ = store.Close() })
	c, err := runway.NewClient(api.APIKey, runway.WithBaseURL(api.URL), runway.WithResultBus(store))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	waitSubscribers(t, other, 1)

	id := generate(ctx, t, c, "")
	var wg sync.WaitGroup
	defer wg.Wait()
	out := make(chan waitOutcome, 1)
	startWait(ctx, &wg, out, c, 0, id)
	_, err = api.WaitRequests(ctx, runwaytest.PathRecordDetail, 1)
	require.NoError(t, err)

	g.shut()
	srv.kill()
	require.NoError(t, srv.start())
	want := &runway.Result{TaskID: id, Code: 200, Message: "success", Source: runway.SourceCallback, VideoURL: "https://file.test/v.mp4"}
	waitFor(t, "a publish after the restart", func(ctx context.Context) bool { return other.Publish(ctx, want) == nil })
	g.lift()

	o := collect(ctx, t, out, 1)[0]
	require.NoError(t, o.err)
	require.Equal(t, want, o.res)
	require.Equal(t, 1, detailGets(api), "woken by the resync, not by a poll")
}
