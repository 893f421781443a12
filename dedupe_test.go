package runway

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMemoryDeduperLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: testNow}
	d := newMemoryDeduper(time.Hour, 10, clk.now)

	st, tok, err := d.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, ClaimAcquired, st)
	require.NotEmpty(t, tok)

	st, tok2, err := d.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, ClaimBusy, st)
	require.Empty(t, tok2)

	require.ErrorIs(t, d.Done(ctx, "k", "wrong-token"), ErrClaimLost)
	require.ErrorIs(t, d.Release(ctx, "k", ""), ErrClaimLost)
	require.ErrorIs(t, d.Done(ctx, "other", tok), ErrClaimLost)

	require.NoError(t, d.Done(ctx, "k", tok))
	require.ErrorIs(t, d.Done(ctx, "k", tok), ErrClaimLost, "done twice")
	require.ErrorIs(t, d.Release(ctx, "k", tok), ErrClaimLost, "release after done")
	st, _, err = d.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, ClaimDone, st)

	clk.advance(time.Hour - time.Second)
	st, _, _ = d.Claim(ctx, "k", time.Minute)
	require.Equal(t, ClaimDone, st, "still remembered just before the retention ends")
	clk.advance(time.Second)
	st, _, _ = d.Claim(ctx, "k", time.Minute)
	require.Equal(t, ClaimAcquired, st, "forgotten after the retention")
}

func TestMemoryDeduperReleaseAndLapse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: testNow}
	d := newMemoryDeduper(time.Hour, 10, clk.now)

	_, tok, err := d.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.NoError(t, d.Release(ctx, "k", tok))
	st, tok, err := d.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, ClaimAcquired, st, "a released key can be claimed again")

	// A claim nobody settles lapses after its ttl; the old owner has lost it.
	clk.advance(time.Minute)
	st, tok2, err := d.Claim(ctx, "k", time.Minute)
	require.NoError(t, err)
	require.Equal(t, ClaimAcquired, st)
	require.NotEqual(t, tok, tok2)
	require.ErrorIs(t, d.Done(ctx, "k", tok), ErrClaimLost)
	require.NoError(t, d.Done(ctx, "k", tok2))

	// An owner past its ttl cannot settle even before anyone else claimed.
	_, tok3, _ := d.Claim(ctx, "j", time.Second)
	clk.advance(time.Second)
	require.ErrorIs(t, d.Done(ctx, "j", tok3), ErrClaimLost)
}

func TestMemoryDeduperBadArguments(t *testing.T) {
	t.Parallel()
	d := NewMemoryDeduper(0)
	_, _, err := d.Claim(context.Background(), "", time.Minute)
	require.Error(t, err)
	_, _, err = d.Claim(context.Background(), "k", 0)
	require.Error(t, err)
}

// TestMemoryDeduperBounded: at the bound new keys are refused (never evicting a claim or a
// recent done marker, which could run a task twice); expired keys free room.
// TestMemoryDeduperFullGivesUpOldDoneMarkers: a full deduper gives up the oldest done marker
// once it is past Kie's redelivery horizon, never a claim or a younger marker.
func TestMemoryDeduperFullGivesUpOldDoneMarkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: testNow}
	d := newMemoryDeduper(2*time.Hour, 3, clk.now)
	claim := func(key string) (ClaimStatus, string, error) { return d.Claim(ctx, key, time.Hour) }
	done := func(key string) {
		t.Helper()
		st, tok, err := claim(key)
		require.NoError(t, err)
		require.Equal(t, ClaimAcquired, st)
		require.NoError(t, d.Done(ctx, key, tok))
	}
	done("old")
	clk.advance(10 * time.Minute)
	done("young")
	_, _, err := claim("busy") // a live claim fills the deduper
	require.NoError(t, err)

	_, _, err = claim("new")
	require.ErrorIs(t, err, errDeduperFull, "the oldest marker is only 10 minutes old")

	clk.advance(kieRedeliveryHorizon - 10*time.Minute) // "old" is now exactly at the horizon
	st, _, err := claim("new")
	require.NoError(t, err)
	require.Equal(t, ClaimAcquired, st)
	require.NotContains(t, d.entries, "old")
	require.Contains(t, d.entries, "young")

	st, _, err = claim("busy")
	require.NoError(t, err)
	require.Equal(t, ClaimBusy, st, "a claim is never given up")
	_, _, err = claim("another")
	require.ErrorIs(t, err, errDeduperFull, "young marker and claims stay")
}

func TestMemoryDeduperBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: testNow}
	d := newMemoryDeduper(time.Hour, 3, clk.now)
	for i := range 3 {
		_, tok, err := d.Claim(ctx, "k"+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
		if i == 0 {
			require.NoError(t, d.Done(ctx, "k0", tok))
		}
	}
	_, _, err := d.Claim(ctx, "k3", time.Minute)
	require.ErrorIs(t, err, errDeduperFull)
	st, _, err := d.Claim(ctx, "k0", time.Minute)
	require.NoError(t, err)
	require.Equal(t, ClaimDone, st, "existing keys still answer at the bound")

	clk.advance(time.Minute) // k1, k2 claims lapse
	st, _, err = d.Claim(ctx, "k3", time.Minute)
	require.NoError(t, err)
	require.Equal(t, ClaimAcquired, st)
	require.Len(t, d.entries, 2) // k0 done, k3 claimed
}

// TestMemoryDeduperChurnStaysBounded: claim/release churn (a result func that keeps failing)
// does not grow the expiry heap without bound.
func TestMemoryDeduperChurnStaysBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newMemoryDeduper(time.Hour, 100, (&fakeClock{t: testNow}).now)
	for i := range 10000 {
		k := "k" + strconv.Itoa(i%7)
		_, tok, err := d.Claim(ctx, k, time.Minute)
		require.NoError(t, err)
		require.NoError(t, d.Release(ctx, k, tok))
	}
	require.Empty(t, d.entries)
	require.LessOrEqual(t, len(d.expiry), 64+1)
}

// TestMemoryDeduperConcurrentClaims: of many goroutines claiming one key, exactly one wins.
// Pins CB-17 of SECURITY.md.
func TestMemoryDeduperConcurrentClaims(t *testing.T) {
	t.Parallel()
	d := NewMemoryDeduper(0)
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			st, _, err := d.Claim(context.Background(), "k", time.Minute)
			if err == nil && st == ClaimAcquired {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, won.Load())
}

func BenchmarkMemoryDeduper(b *testing.B) {
	ctx := context.Background()
	d := NewMemoryDeduper(0)
	i := 0
	for b.Loop() {
		k := strconv.Itoa(i % 50000)
		i++
		st, tok, err := d.Claim(ctx, k, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if st == ClaimAcquired {
			if err := d.Done(ctx, k, tok); err != nil {
				b.Fatal(err)
			}
		}
	}
}
