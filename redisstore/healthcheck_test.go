package redisstore

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// blackholeProxy forwards TCP to Redis; blackhole makes the connections open so far swallow
// all traffic while staying open, like a silent network partition.
type blackholeProxy struct {
	l        net.Listener
	accepted atomic.Int64

	mu    sync.Mutex
	conns []*proxied
	wg    sync.WaitGroup
}

type proxied struct {
	down, up net.Conn
	dead     atomic.Bool
}

func newBlackholeProxy(t *testing.T, upstream string) *blackholeProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &blackholeProxy{l: l}
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			pc := &proxied{down: c, up: up}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			p.accepted.Add(1)
			p.wg.Go(func() { pc.pipe(up, c) })
			p.wg.Go(func() { pc.pipe(c, up) })
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		for _, pc := range p.conns {
			_ = pc.down.Close()
			_ = pc.up.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// pipe copies src to dst until either fails, dropping everything once the pair is
// blackholed; then it closes both, as a proxy would.
func (pc *proxied) pipe(dst, src net.Conn) {
	defer func() { _ = pc.down.Close(); _ = pc.up.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pc.dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *blackholeProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.dead.Store(true)
	}
}

// A subscription whose connection goes silent is noticed by the unanswered ping and replaced
// without any user action.
func TestSilentConnectionIsReplaced(t *testing.T) {
	t.Parallel()
	srv := sharedRedis(t)
	proxy := newBlackholeProxy(t, srv.addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.l.Addr().String(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = viaProxy.Close() })
	a := New(viaProxy, WithPrefix(uniquePrefix(t)), WithReconnectBackoff(time.Millisecond, time.Millisecond))
	a.healthCheck = 50 * time.Millisecond
	t.Cleanup(func() { _ = a.Close() })
	b := New(srv.client(t), WithPrefix(a.prefix))
	fromA := listen(t, a)
	waitSubscribers(t, b, 1)
	before := proxy.accepted.Load()

	proxy.blackhole()
	waitFor(t, "a new subscriber connection", func(context.Context) bool { return proxy.accepted.Load() > before })
	// The new connection's SUBSCRIBE may still be in flight: publish until one arrives.
	waitFor(t, "a result through the new subscription", func(ctx context.Context) bool {
		require.NoError(t, b.Publish(ctx, &runway.Result{TaskID: "after-partition", Code: 200}))
		select {
		case r := <-fromA:
			require.Equal(t, "after-partition", r.TaskID)
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
}
