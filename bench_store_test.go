package runway

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// storeKeys is how many task ids the retention benchmarks insert.
const storeKeys = 1_000_000

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkDedupeMillion claims and marks done 1 000 000 distinct task ids (36-byte, like
// Kie's) in the memory deduper, one fake millisecond apart, and reports the live heap per
// remembered id (B/entry, the key's own bytes included, since the deduper keeps it). Then the
// clock passes the retention and one more claim sweeps: every expired id must be gone and the
// memory given back (retained-B: live heap left above the empty deduper's).
//
// The deduper is built as NewMemoryDeduper builds it, with two changes: its bound is raised
// from 100 000 to 2 000 000 keys so that all the ids are remembered at once, and its clock is
// fake. The retention is the default hour; the ids span about 17 fake minutes.
func BenchmarkDedupeMillion(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		clk := &fakeClock{t: testNow}
		d := newMemoryDeduper(DefaultDedupeTTL, 2*storeKeys, clk.now)
		before := heapInUse()
		for i := range storeKeys {
			key := benchTaskID(i)
			st, tok, err := d.Claim(ctx, key, DefaultResultTimeout+claimMargin)
			if err != nil || st != ClaimAcquired {
				b.Fatalf("claim %d: %v %v", i, st, err)
			}
			if err := d.Done(ctx, key, tok); err != nil {
				b.Fatal(err)
			}
			clk.advance(time.Millisecond)
		}
		full := heapInUse()
		if len(d.entries) != storeKeys {
			b.Fatalf("remembered %d ids, want %d", len(d.entries), storeKeys)
		}
		st, _, err := d.Claim(ctx, benchTaskID(0), time.Minute)
		if err != nil || st != ClaimDone {
			b.Fatalf("a remembered id claimed again: %v %v", st, err)
		}

		clk.advance(DefaultDedupeTTL)
		if st, _, err := d.Claim(ctx, "after-expiry", time.Minute); err != nil || st != ClaimAcquired {
			b.Fatalf("claim after expiry: %v %v", st, err)
		}
		if len(d.entries) != 1 || len(d.expiry) != 1 {
			b.Fatalf("after expiry: %d entries, %d heap items; want 1 and 1", len(d.entries), len(d.expiry))
		}
		after := heapInUse()
		b.ReportMetric(float64(full-before)/storeKeys, "B/entry")
		b.ReportMetric(float64(max(after, before)-before), "retained-B")
		runtime.KeepAlive(d)
	}
}

// BenchmarkResultBusMillion publishes 1 000 000 results for distinct task ids on the default
// memory bus (10 000 kept at most) with a client's waiter hub listening, and checks that the
// bus holds no more than its bound and the hub nothing: kept-results reports what is left.
func BenchmarkResultBusMillion(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		bus := NewMemoryResultBus(0, 0)
		c := newOfflineClient(b, WithResultBus(bus))
		before := heapInUse()
		for i := range storeKeys {
			r := &Result{TaskID: "task-" + strconv.Itoa(i), Code: 200, VideoURL: "https://file.com/k/1.mp4", Source: SourceCallback}
			if err := bus.Publish(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		if n := bus.Len(); n != DefaultMaxKeptResults {
			b.Fatalf("bus keeps %d results, want %d", n, DefaultMaxKeptResults)
		}
		if n := c.hub.len(); n != 0 {
			b.Fatalf("hub holds %d task ids", n)
		}
		b.ReportMetric(float64(bus.Len()), "kept-results")
		b.ReportMetric(float64(heapInUse()-min(before, heapInUse())), "retained-B")
	}
}

// TestMemoryDeduperTokens: tokens are distinct and each settles its own claim only.
func TestMemoryDeduperTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newMemoryDeduper(time.Hour, 10000, (&fakeClock{t: testNow}).now)
	seen := make(map[string]bool)
	toks := make([]string, 0, 1000)
	for i := range cap(toks) {
		_, tok, err := d.Claim(ctx, "k"+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i+1), tok)
		require.False(t, seen[tok])
		seen[tok] = true
		toks = append(toks, tok)
	}
	for i, tok := range toks {
		require.ErrorIs(t, d.Done(ctx, "k"+strconv.Itoa((i+1)%len(toks)), tok), ErrClaimLost)
		require.NoError(t, d.Done(ctx, "k"+strconv.Itoa(i), tok))
	}
}
