package redisstore

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// With Redis down every operation fails instead of pretending (the callback handler answers
// 5xx and Kie retries); when Redis is back on the same address, operations work again and
// the subscribers re-subscribe by themselves.
func TestRedisKilledAndRestarted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := dedicatedRedis(t)
	fast := WithReconnectBackoff(time.Millisecond, 20*time.Millisecond)
	short := WithTimeout(200 * time.Millisecond)
	a := New(srv.client(t), fast, short)
	b := New(srv.client(t), fast, short)
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	fromA, fromB := listen(t, a), listen(t, b)
	waitSubscribers(t, a, 2)

	_, tok, err := a.Claim(ctx, "in-flight", time.Minute)
	require.NoError(t, err)

	srv.kill()
	_, _, err = a.Claim(ctx, "k", time.Minute)
	require.Error(t, err, "claim without Redis")
	require.Error(t, a.Done(ctx, "in-flight", tok))
	require.NotErrorIs(t, a.Done(ctx, "in-flight", tok), runway.ErrClaimLost, "an outage is not a lost claim")
	require.Error(t, a.Release(ctx, "in-flight", tok))
	require.Error(t, a.Publish(ctx, &runway.Result{TaskID: "lost", Code: 200}), "publish without Redis")
	_, err = b.Lookup(ctx, "lost")
	require.Error(t, err, "lookup without Redis")
	require.Empty(t, fromA, "a failed publish calls no listener")

	require.NoError(t, srv.start())
	waitSubscribers(t, a, 2)
	st, _, err := a.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, runway.ClaimAcquired, st)

	want := fullResult(t, "after-restart")
	require.NoError(t, b.Publish(ctx, want))
	require.Equal(t, want, next(t, fromA))
	require.Equal(t, want, next(t, fromB))
	got, err := a.Lookup(ctx, "after-restart")
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// A Redis that accepts connections but never answers fails each operation within the
// Store's timeout, well inside Kie's 15 s callback budget. The client's own timeouts are an
// hour, so only the Store's timeout can end the calls.
func TestHungRedisTimesOut(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conns := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c // held open, never answered
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		for c := range conns {
			_ = c.Close()
		}
	})
	rdb := redis.NewClient(&redis.Options{
		Addr: l.Addr().String(), ContextTimeoutEnabled: true,
		DialTimeout: time.Hour, ReadTimeout: time.Hour, WriteTimeout: time.Hour,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	s := New(rdb, WithTimeout(50*time.Millisecond))
	ctx := context.Background()

	_, _, err = s.Claim(ctx, "k", time.Minute)
	requireTimeout(t, err)
	requireTimeout(t, s.Done(ctx, "k", randomHex()))
	requireTimeout(t, s.Publish(ctx, &runway.Result{TaskID: "t"}))
	_, err = s.Lookup(ctx, "t")
	requireTimeout(t, err)
}

func requireTimeout(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.True(t, isTimeout(err) || errors.Is(err, context.DeadlineExceeded), "want a timeout, got %v", err)
}

// Close stops the subscriber, also while it is backing off from a dead Redis, and leaves no
// goroutine behind. Not parallel: goleak compares against the goroutines at its start.
func TestCloseStopsEverything(t *testing.T) {
	for _, tt := range []struct {
		name string
		down bool
	}{{"subscribed", false}, {"redis down", true}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := dedicatedRedis(t)
			rdb := redis.NewClient(&redis.Options{Addr: srv.addr, ContextTimeoutEnabled: true})
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			defer func() { _ = rdb.Close() }()

			s := New(rdb, WithReconnectBackoff(time.Hour, time.Hour))
			listen(t, s)
			waitSubscribers(t, s, 1)
			if tt.down {
				srv.kill()
			}
			require.NoError(t, s.Close())
			require.NoError(t, s.Close(), "idempotent")
			if !tt.down {
				waitSubscribers(t, s, 0)
			}
		})
	}
}

func TestCloseWithoutListen(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	require.NoError(t, s.Close())
	// Listen after Close starts nothing but still sees this Store's own publishes.
	ch := listen(t, s)
	require.NoError(t, s.Publish(context.Background(), &runway.Result{TaskID: "t"}))
	require.Equal(t, "t", next(t, ch).TaskID)
	select {
	case <-s.done:
	default:
		t.Fatal("subscriber marked running after Close")
	}
}

func TestIsTimeout(t *testing.T) {
	t.Parallel()
	require.False(t, isTimeout(errors.New("x")))
	require.True(t, isTimeout(&net.OpError{Op: "read", Err: timeoutErr{}}))
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
