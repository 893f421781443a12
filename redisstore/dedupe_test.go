package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// newTestStore returns a Store on the shared server with its own prefix.
func newTestStore(t *testing.T, opts ...Option) (*Store, *redis.Client) {
	t.Helper()
	rdb := sharedRedis(t).client(t)
	s := New(rdb, append([]Option{WithPrefix(uniquePrefix(t))}, opts...)...)
	t.Cleanup(func() { _ = s.Close() })
	return s, rdb
}

func TestClaimLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		finish  func(s *Store, key, token string) error
		reclaim runway.ClaimStatus
	}{
		{"done", func(s *Store, k, tok string) error { return s.Done(ctx, k, tok) }, runway.ClaimDone},
		{"release", func(s *Store, k, tok string) error { return s.Release(ctx, k, tok) }, runway.ClaimAcquired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newTestStore(t)
			other := New(s.rdb, WithPrefix(s.prefix)) // a second replica
			t.Cleanup(func() { _ = other.Close() })

			st, tok, err := s.Claim(ctx, "task-1", time.Minute)
			require.NoError(t, err)
			require.Equal(t, runway.ClaimAcquired, st)
			require.Regexp(t, `^[0-9a-f]{32}$`, tok)
			pttl, err := s.rdb.PTTL(ctx, s.claimKey("task-1")).Result()
			require.NoError(t, err)
			require.True(t, pttl > 30*time.Second && pttl <= time.Minute, "claim PTTL %v", pttl)

			st, tok2, err := other.Claim(ctx, "task-1", time.Minute)
			require.NoError(t, err)
			require.Equal(t, runway.ClaimBusy, st)
			require.Empty(t, tok2)

			require.NoError(t, tt.finish(s, "task-1", tok))
			st, _, err = other.Claim(ctx, "task-1", time.Minute)
			require.NoError(t, err)
			require.Equal(t, tt.reclaim, st)

			// Keys are independent.
			st, _, err = other.Claim(ctx, "task-2", time.Minute)
			require.NoError(t, err)
			require.Equal(t, runway.ClaimAcquired, st)
		})
	}
}

func TestDoneAndReleaseNeedTheOwnerToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, tok, err := s.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)

	for _, bad := range []string{"", doneMarker, randomHex(), tok + "x"} {
		require.ErrorIs(t, s.Done(ctx, "k", bad), runway.ErrClaimLost, "token %q", bad)
		require.ErrorIs(t, s.Release(ctx, "k", bad), runway.ErrClaimLost, "token %q", bad)
	}
	st, _, err := s.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, runway.ClaimBusy, st, "foreign tokens left the claim alone")

	require.NoError(t, s.Done(ctx, "k", tok))
	require.ErrorIs(t, s.Release(ctx, "k", tok), runway.ErrClaimLost, "a done marker cannot be released")
	st, _, err = s.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, runway.ClaimDone, st)

	require.ErrorIs(t, s.Done(ctx, "never-claimed", tok), runway.ErrClaimLost)
}

func TestClaimRejectsBadArguments(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	for _, tt := range []struct {
		key string
		ttl time.Duration
	}{{"", time.Minute}, {"k", 0}, {"k", -time.Second}, {"k", time.Microsecond}} {
		_, _, err := s.Claim(context.Background(), tt.key, tt.ttl)
		require.Error(t, err, "key %q ttl %v", tt.key, tt.ttl)
	}
}

// A claim that is neither done nor released lapses on Redis' clock; the slow first owner can
// then neither mark done nor release the new owner's claim.
func TestClaimLapsesAndSlowOwnerLosesIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, rdb := newTestStore(t)
	_, slow, err := s.Claim(ctx, "k", 30*time.Millisecond)
	require.NoError(t, err)
	waitFor(t, "the claim to expire in Redis", func(ctx context.Context) bool {
		n, err := rdb.Exists(ctx, s.claimKey("k")).Result()
		require.NoError(t, err)
		return n == 0
	})
	st, fresh, err := s.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, runway.ClaimAcquired, st)

	require.ErrorIs(t, s.Done(ctx, "k", slow), runway.ErrClaimLost)
	require.ErrorIs(t, s.Release(ctx, "k", slow), runway.ErrClaimLost)
	v, err := rdb.Get(ctx, s.claimKey("k")).Result()
	require.NoError(t, err)
	require.Equal(t, fresh, v, "the new owner keeps the claim")
}

func TestDoneMarkerRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		opts []Option
		want time.Duration
	}{
		{"default", nil, DefaultDoneRetention},
		{"configured", []Option{WithDoneRetention(2 * time.Hour)}, 2 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, rdb := newTestStore(t, tt.opts...)
			_, tok, err := s.Claim(ctx, "k", time.Second)
			require.NoError(t, err)
			require.NoError(t, s.Done(ctx, "k", tok))
			pttl, err := rdb.PTTL(ctx, s.claimKey("k")).Result()
			require.NoError(t, err)
			require.LessOrEqual(t, pttl, tt.want)
			require.Greater(t, pttl, tt.want-time.Minute, "the marker outlives Kie's retries, not the claim TTL")
		})
	}
}

func TestConcurrentClaimsAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	replicas := []*Store{s, New(s.rdb, WithPrefix(s.prefix)), New(sharedRedis(t).client(t), WithPrefix(s.prefix))}
	const n = 64
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		status = make([]runway.ClaimStatus, n)
		errs   = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			status[i], _, errs[i] = replicas[i%len(replicas)].Claim(ctx, "hot", time.Minute)
		})
	}
	close(start)
	wg.Wait()
	acquired := 0
	for i := range n {
		require.NoError(t, errs[i])
		switch status[i] {
		case runway.ClaimAcquired:
			acquired++
		case runway.ClaimBusy:
		default:
			t.Fatalf("claim %d: status %v", i, status[i])
		}
	}
	require.Equal(t, 1, acquired)
}
