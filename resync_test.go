package runway

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gappyBus is a shared bus as one replica sees it: while its subscription is down, results
// published elsewhere are stored but do not reach this replica's listeners; resync plays the
// bus coming back and calls the OnResync functions.
type gappyBus struct {
	*MemoryResultBus

	mu          sync.Mutex
	down        bool
	failLookups bool
	lookups     []string
	resyncs     map[int]func(context.Context)
	nextID      int
}

func newGappyBus() *gappyBus {
	return &gappyBus{MemoryResultBus: NewMemoryResultBus(0, 0), resyncs: make(map[int]func(context.Context))}
}

func (b *gappyBus) Listen(fn func(*Result)) (stop func()) {
	return b.MemoryResultBus.Listen(func(r *Result) {
		b.mu.Lock()
		down := b.down
		b.mu.Unlock()
		if !down {
			fn(r)
		}
	})
}

func (b *gappyBus) Lookup(ctx context.Context, taskID string) (*Result, error) {
	b.mu.Lock()
	b.lookups = append(b.lookups, taskID)
	fail := b.failLookups
	b.mu.Unlock()
	if fail {
		return nil, errors.New("bus down")
	}
	return b.MemoryResultBus.Lookup(ctx, taskID)
}

func (b *gappyBus) OnResync(fn func(context.Context)) (stop func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.nextID
	b.nextID++
	b.resyncs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.resyncs, id)
	}
}

func (b *gappyBus) set(down, failLookups bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down, b.failLookups = down, failLookups
}

// resync brings delivery back and runs every OnResync function, as a reconnected bus does.
func (b *gappyBus) resync(ctx context.Context) {
	b.mu.Lock()
	b.down = false
	fns := make([]func(context.Context), 0, len(b.resyncs))
	for _, fn := range b.resyncs {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(ctx)
	}
}

// takeLookups returns the task ids looked up since the last call.
func (b *gappyBus) takeLookups() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := b.lookups
	b.lookups = nil
	return ids
}

func (b *gappyBus) registered() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.resyncs)
}

// Results published while the bus was not delivering reach the waiters as soon as the bus
// resyncs, not at their next poll an hour later; the resync costs one Lookup per task id,
// however many waiters it has.
func TestResyncWakesWaitersAfterAGap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("", pollStateReply("any", StateGenerating))
		bus := newGappyBus()
		c := newPollClient(t, api, WithResultBus(bus))
		hour := WithPollInterval(time.Hour)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a1 := startWait(ctx, c, "gap-a", hour)
		a2 := startWait(ctx, c, "gap-a", hour)
		b1 := startWait(ctx, c, "gap-b", hour)
		none := startWait(ctx, c, "gap-none", hour)
		synctest.Wait() // every waiter looked up, polled once and sleeps
		require.Equal(t, 4, api.gets())
		bus.takeLookups()

		bus.set(true, false)
		require.NoError(t, bus.Publish(ctx, callbackResult("gap-a")))
		require.NoError(t, bus.Publish(ctx, callbackResult("gap-b")))
		synctest.Wait()
		for _, ch := range []<-chan waitOutcome{a1, a2, b1} {
			require.Empty(t, ch, "a result published during the gap did not reach the listeners")
		}

		bus.resync(ctx)
		for _, ch := range []<-chan waitOutcome{a1, a2} {
			out := <-ch
			require.NoError(t, out.err)
			assert.Equal(t, SourceCallback, out.res.Source)
			assert.Equal(t, "https://file.test/gap-a.mp4", out.res.VideoURL)
		}
		out := <-b1
		require.NoError(t, out.err)
		assert.Equal(t, "gap-b", out.res.TaskID)
		assert.ElementsMatch(t, []string{"gap-a", "gap-b", "gap-none"}, bus.takeLookups(), "one lookup per task id")
		assert.Equal(t, 4, api.gets(), "no poll: the resync woke them")

		synctest.Wait()
		require.Empty(t, none, "a task without a result keeps waiting")
		cancel()
		require.ErrorIs(t, (<-none).err, context.Canceled)
		assert.Zero(t, c.hub.len())
	})
}

// A resync whose lookups fail (the bus went down again) stops at the first failure and
// leaves the waiters to their polls; the next resync finds the results.
func TestResyncStopsAtFirstFailedLookup(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := newPollAPI(t).script("", pollStateReply("any", StateGenerating))
		bus := newGappyBus()
		var logs logBuffer
		c := newPollClient(t, api, WithResultBus(bus), WithLogger(logs.logger()))
		hour := WithPollInterval(time.Hour)
		first := startWait(t.Context(), c, "fail-1", hour)
		second := startWait(t.Context(), c, "fail-2", hour)
		synctest.Wait()
		bus.takeLookups()

		bus.set(true, true)
		require.NoError(t, bus.Publish(t.Context(), callbackResult("fail-1")))
		require.NoError(t, bus.Publish(t.Context(), callbackResult("fail-2")))
		bus.resync(t.Context())
		bus.set(false, true)
		synctest.Wait()
		assert.Len(t, bus.takeLookups(), 1, "stopped at the first failure")
		assert.Contains(t, logs.String(), "resync lookup failed")
		require.Empty(t, first)
		require.Empty(t, second)

		bus.set(false, false)
		bus.resync(t.Context())
		require.NoError(t, (<-first).err)
		require.NoError(t, (<-second).err)
		assert.Equal(t, 2, api.gets())
	})
}

// A resync with nobody waiting looks nothing up, and Close unregisters the client; a bus
// without the interface is left alone.
func TestResyncRegistration(t *testing.T) {
	t.Parallel()
	bus := newGappyBus()
	c := newPollClient(t, newPollAPI(t), WithResultBus(bus))
	require.Equal(t, 1, bus.registered())
	bus.resync(t.Context())
	assert.Empty(t, bus.takeLookups())
	require.NoError(t, c.Close())
	assert.Zero(t, bus.registered())

	_, ok := any(NewMemoryResultBus(0, 0)).(ResyncNotifier)
	assert.False(t, ok, "the in-process bus has no gaps to resync")
}
