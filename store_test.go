package runway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newClockedBus(ttl time.Duration, max int) (*MemoryResultBus, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := NewMemoryResultBus(ttl, max)
	b.now = clk.now
	return b, clk
}

func busResult(id string) *Result {
	return &Result{TaskID: id, Code: 200, Source: SourceCallback}
}

// keptIDs returns which of ids the bus still returns from Lookup.
func keptIDs(t *testing.T, b *MemoryResultBus, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		r, err := b.Lookup(context.Background(), id)
		require.NoError(t, err)
		if r != nil {
			require.Equal(t, id, r.TaskID)
			out = append(out, id)
		}
	}
	return out
}

func TestMemoryResultBusPublishLookup(t *testing.T) {
	t.Parallel()
	b, _ := newClockedBus(time.Minute, 10)
	ctx := context.Background()
	r := busResult("a")
	require.NoError(t, b.Publish(ctx, r))
	got, err := b.Lookup(ctx, "a")
	require.NoError(t, err)
	assert.Same(t, r, got)
	got, err = b.Lookup(ctx, "missing")
	require.NoError(t, err)
	assert.Nil(t, got, "no result is (nil, nil)")

	require.Error(t, b.Publish(ctx, nil))
	require.Error(t, b.Publish(ctx, &Result{Code: 200}))
	assert.Equal(t, 1, b.Len())
}

func TestMemoryResultBusDefaults(t *testing.T) {
	t.Parallel()
	for _, args := range []struct {
		ttl time.Duration
		max int
	}{{0, 0}, {-time.Second, -1}} {
		b := NewMemoryResultBus(args.ttl, args.max)
		assert.Equal(t, DefaultResultTTL, b.ttl)
		assert.Equal(t, DefaultMaxKeptResults, b.max)
		assert.Equal(t, maxKeptResultBytes, b.maxBytes)
	}
}

func TestMemoryResultBusEvictsByAge(t *testing.T) {
	t.Parallel()
	b, clk := newClockedBus(10*time.Minute, 100)
	ctx := context.Background()
	require.NoError(t, b.Publish(ctx, busResult("a")))
	clk.advance(5 * time.Minute)
	require.NoError(t, b.Publish(ctx, busResult("b")))

	clk.advance(5*time.Minute - time.Nanosecond)
	assert.Equal(t, []string{"a", "b"}, keptIDs(t, b, "a", "b"))
	clk.advance(time.Nanosecond)
	assert.Equal(t, []string{"b"}, keptIDs(t, b, "a", "b"), "a is gone exactly at its ttl")
	assert.Equal(t, 1, b.Len())
	clk.advance(5 * time.Minute)
	assert.Empty(t, keptIDs(t, b, "a", "b"))
	assert.Zero(t, b.Len())
}

func TestMemoryResultBusEvictsByCount(t *testing.T) {
	t.Parallel()
	b, clk := newClockedBus(time.Hour, 3)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		require.NoError(t, b.Publish(context.Background(), busResult(id)))
		clk.advance(time.Second)
	}
	assert.Equal(t, 3, b.Len())
	assert.Equal(t, []string{"c", "d", "e"}, keptIDs(t, b, "a", "b", "c", "d", "e"), "oldest evicted first")
}

func TestMemoryResultBusEvictsBySize(t *testing.T) {
	t.Parallel()
	b, _ := newClockedBus(time.Hour, 100)
	b.maxBytes = 3 * (keptResultOverhead + 1000)
	big := func(id string, n int) *Result {
		r := busResult(id)
		r.Raw = []byte(strings.Repeat("x", n))
		return r
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, b.Publish(ctx, big(id, 900)))
	}
	assert.Equal(t, 3, b.Len())
	require.NoError(t, b.Publish(ctx, big("d", 900)))
	assert.Equal(t, []string{"b", "c", "d"}, keptIDs(t, b, "a", "b", "c", "d"))

	require.NoError(t, b.Publish(ctx, big("huge", 1<<20)))
	assert.Equal(t, []string{"huge"}, keptIDs(t, b, "b", "c", "d", "huge"), "the newest is kept even when alone too large")
	require.NoError(t, b.Publish(ctx, big("e", 10)))
	assert.Equal(t, []string{"e"}, keptIDs(t, b, "huge", "e"))
	assert.Equal(t, resultSize(big("e", 10)), b.bytes, "the byte count follows evictions")
}

func TestMemoryResultBusRepublish(t *testing.T) {
	t.Parallel()
	t.Run("replaces the result and moves it to the back", func(t *testing.T) {
		t.Parallel()
		b, _ := newClockedBus(time.Hour, 3)
		ctx := context.Background()
		for _, id := range []string{"a", "b", "c"} {
			require.NoError(t, b.Publish(ctx, busResult(id)))
		}
		second := &Result{TaskID: "a", Code: 200, Source: SourcePoll}
		require.NoError(t, b.Publish(ctx, second))
		assert.Equal(t, 3, b.Len(), "a re-publish does not add an entry")
		require.NoError(t, b.Publish(ctx, busResult("d")))
		assert.Equal(t, []string{"a", "c", "d"}, keptIDs(t, b, "a", "b", "c", "d"), "b is now the oldest")
		got, err := b.Lookup(ctx, "a")
		require.NoError(t, err)
		assert.Same(t, second, got)
	})
	t.Run("restarts the retention", func(t *testing.T) {
		t.Parallel()
		b, clk := newClockedBus(10*time.Minute, 10)
		ctx := context.Background()
		require.NoError(t, b.Publish(ctx, busResult("a")))
		require.NoError(t, b.Publish(ctx, busResult("b")))
		clk.advance(8 * time.Minute)
		require.NoError(t, b.Publish(ctx, busResult("a")))
		clk.advance(4 * time.Minute)
		assert.Equal(t, []string{"a"}, keptIDs(t, b, "a", "b"))
		clk.advance(6 * time.Minute)
		assert.Empty(t, keptIDs(t, b, "a", "b"))
		assert.Zero(t, b.bytes)
	})
}

func TestMemoryResultBusListen(t *testing.T) {
	t.Parallel()
	b, _ := newClockedBus(time.Hour, 10)
	ctx := context.Background()
	var got1, got2 []string
	stop1 := b.Listen(func(r *Result) {
		// Listeners run after the result is stored and without the bus lock held: a lookup
		// from inside one neither deadlocks nor misses the result.
		kept, err := b.Lookup(ctx, r.TaskID)
		assert.NoError(t, err)
		assert.Same(t, r, kept)
		got1 = append(got1, r.TaskID)
	})
	stop2 := b.Listen(func(r *Result) { got2 = append(got2, r.TaskID) })

	require.NoError(t, b.Publish(ctx, busResult("a")))
	stop1()
	require.NoError(t, b.Publish(ctx, busResult("b")))
	stop1() // harmless
	stop2()
	require.NoError(t, b.Publish(ctx, busResult("c")))

	assert.Equal(t, []string{"a"}, got1)
	assert.Equal(t, []string{"a", "b"}, got2)
	assert.Equal(t, 3, b.Len(), "results are kept with or without listeners")
}

func TestMemoryResultBusConcurrent(t *testing.T) {
	t.Parallel()
	b := NewMemoryResultBus(time.Hour, 50)
	ctx := context.Background()
	var delivered sync.Map
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			stop := b.Listen(func(r *Result) { delivered.Store(r.TaskID, true) })
			defer stop()
			for i := range 200 {
				id := fmt.Sprintf("g%d-%d", g, i%60)
				assert.NoError(t, b.Publish(ctx, busResult(id)))
				_, err := b.Lookup(ctx, id)
				assert.NoError(t, err)
				assert.LessOrEqual(t, b.Len(), 50)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 50, b.Len())
	_, ok := delivered.Load("g7-59")
	assert.True(t, ok, "a listener that was registered saw its own publish")
}

func TestHub(t *testing.T) {
	t.Parallel()
	h := newHub()
	a1, a2, a3 := h.register("a"), h.register("a"), h.register("a")
	b := h.register("b")
	assert.Equal(t, 2, h.len())

	h.deliver(nil)
	h.deliver(busResult("nobody"))
	first := busResult("a")
	h.deliver(first)
	for _, w := range []*waiter{a1, a2, a3} {
		select {
		case r := <-w.ch:
			assert.Same(t, first, r)
		default:
			t.Fatal("a waiter of a got nothing")
		}
	}
	assert.Empty(t, b.ch)

	// A full channel keeps its first result and deliver does not block.
	h.deliver(first)
	h.deliver(busResult("a"))
	for _, w := range []*waiter{a1, a2, a3} {
		assert.Same(t, first, <-w.ch)
	}

	// Unregister in the middle, at the head, twice, and the last one.
	h.unregister("a", a2)
	h.unregister("a", a3)
	h.unregister("a", a3)
	h.deliver(busResult("a"))
	assert.Len(t, a1.ch, 1, "the remaining waiter still receives")
	assert.Empty(t, a2.ch)
	assert.Empty(t, a3.ch)
	assert.Equal(t, 2, h.len())
	h.unregister("a", a1)
	h.unregister("b", b)
	h.unregister("b", b)
	assert.Zero(t, h.len())
	assert.Empty(t, h.waiters)
}

func TestHubConcurrent(t *testing.T) {
	t.Parallel()
	h := newHub()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				id := fmt.Sprintf("t%d", (g+i)%5)
				w := h.register(id)
				h.deliver(busResult(id))
				r := <-w.ch
				assert.Equal(t, id, r.TaskID)
				h.unregister(id, w)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, h.len())
}
