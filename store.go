package runway

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ResultBus carries accepted results to every waiter, on this replica and on others, and
// keeps each result for a while so that a WaitForResult that starts late returns it at once.
// The default is in-process (NewMemoryResultBus); redisstore provides a shared one. A shared
// bus whose delivery to Listen functions can have gaps (a subscription that dropped and came
// back) should also implement ResyncNotifier, so that results published during a gap still
// wake the waiters at once rather than at their next poll.
type ResultBus interface {
	// Publish stores r under r.TaskID and delivers it to every Listen function, on every
	// replica sharing the bus.
	Publish(ctx context.Context, r *Result) error
	// Lookup returns the stored result for taskID, or (nil, nil) when there is none.
	Lookup(ctx context.Context, taskID string) (*Result, error)
	// Listen registers fn to be called for every published result until stop is called.
	// fn must not block.
	Listen(fn func(*Result)) (stop func())
}

// ResyncNotifier is an optional interface of a ResultBus. A Client whose bus implements it
// registers for resyncs when it is created: after each one it looks up, with one Lookup per
// task id, the result of every task it is waiting for and hands what it finds to the waiters.
type ResyncNotifier interface {
	// OnResync registers fn to be called each time the bus starts delivering to its Listen
	// functions again after a gap in which results may have been published without reaching
	// them, and at the first start of delivery. When fn runs, every result published later
	// reaches the Listen functions and every result published before is available to Lookup
	// (within the bus's retention). ctx ends when the bus shuts down; fn may call Lookup but
	// should return promptly. stop unregisters fn; calling it more than once is harmless.
	OnResync(fn func(ctx context.Context)) (stop func())
}

// Default retention of the in-memory result bus.
const (
	DefaultResultTTL      = 30 * time.Minute
	DefaultMaxKeptResults = 10000
	// maxKeptResultBytes bounds the data the in-memory bus keeps in all (a callback body may
	// be up to DefaultMaxCallbackBytes, and unsigned callbacks can be forged).
	maxKeptResultBytes = 64 << 20
	// keptResultOverhead is the per-result bookkeeping counted against maxKeptResultBytes.
	keptResultOverhead = 256
)

// MemoryResultBus is an in-process ResultBus that keeps results for a bounded time, count and
// size, oldest publish evicted first. Create it with NewMemoryResultBus; it is safe for
// concurrent use. The *Result values it stores and hands out are shared: treat them as
// read-only (WaitForResult returns copies).
type MemoryResultBus struct {
	ttl      time.Duration
	max      int
	maxBytes int
	now      func() time.Time

	mu        sync.Mutex
	results   map[string]*keptResult
	oldest    *keptResult // the list by last publish, oldest first, linked through the results
	newest    *keptResult
	bytes     int
	listeners map[int]func(*Result)
	fns       []func(*Result) // snapshot of listeners, replaced (never mutated) on change
	nextID    int
}

type keptResult struct {
	r          *Result
	expires    time.Time
	size       int
	prev, next *keptResult // older and newer neighbours
}

// NewMemoryResultBus returns an in-process bus that keeps each result for ttl after its last
// publish and at most max results (oldest evicted first). ttl <= 0 or max <= 0 select
// DefaultResultTTL and DefaultMaxKeptResults. Whatever max is, the results kept hold at
// most 64 MiB of data in all.
func NewMemoryResultBus(ttl time.Duration, max int) *MemoryResultBus {
	if ttl <= 0 {
		ttl = DefaultResultTTL
	}
	if max <= 0 {
		max = DefaultMaxKeptResults
	}
	return &MemoryResultBus{
		ttl:       ttl,
		max:       max,
		maxBytes:  maxKeptResultBytes,
		now:       time.Now,
		results:   make(map[string]*keptResult),
		listeners: make(map[int]func(*Result)),
	}
}

// Publish implements ResultBus. Publishing a task id again replaces its result and restarts
// its retention. Listeners run synchronously on the caller's goroutine, after the result is
// stored, without the bus's lock held.
func (b *MemoryResultBus) Publish(_ context.Context, r *Result) error {
	if r == nil || r.TaskID == "" {
		return errors.New("runway: publish: result without task id")
	}
	now := b.now()
	size := resultSize(r)
	b.mu.Lock()
	b.evictExpiredLocked(now)
	if k, ok := b.results[r.TaskID]; ok {
		b.bytes += size - k.size
		k.r, k.expires, k.size = r, now.Add(b.ttl), size
		b.unlinkLocked(k)
		b.pushLocked(k)
	} else {
		var k *keptResult
		if len(b.results) >= b.max {
			// Full: the oldest result goes, and its record carries the new one.
			k = b.oldest
			b.removeLocked(k)
			*k = keptResult{r: r, expires: now.Add(b.ttl), size: size}
		} else {
			k = &keptResult{r: r, expires: now.Add(b.ttl), size: size}
		}
		b.results[r.TaskID] = k
		b.pushLocked(k)
		b.bytes += size
	}
	for len(b.results) > b.max || (b.bytes > b.maxBytes && len(b.results) > 1) {
		b.removeLocked(b.oldest)
	}
	fns := b.fns
	b.mu.Unlock()
	for _, fn := range fns {
		fn(r)
	}
	return nil
}

// Lookup implements ResultBus.
func (b *MemoryResultBus) Lookup(_ context.Context, taskID string) (*Result, error) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.evictExpiredLocked(now)
	if k, ok := b.results[taskID]; ok {
		return k.r, nil
	}
	return nil, nil
}

// Listen implements ResultBus. Calling stop more than once is harmless.
func (b *MemoryResultBus) Listen(fn func(*Result)) (stop func()) {
	b.mu.Lock()
	id := b.nextID
	b.nextID++
	b.listeners[id] = fn
	b.snapshotLocked()
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.listeners, id)
			b.snapshotLocked()
			b.mu.Unlock()
		})
	}
}

func (b *MemoryResultBus) snapshotLocked() {
	fns := make([]func(*Result), 0, len(b.listeners))
	for _, fn := range b.listeners {
		fns = append(fns, fn)
	}
	b.fns = fns
}

// evictExpiredLocked drops results whose retention ended. The list is ordered by last
// publish and every publish gets the same ttl, so the expired ones are the oldest.
func (b *MemoryResultBus) evictExpiredLocked(now time.Time) {
	for b.oldest != nil && !now.Before(b.oldest.expires) {
		b.removeLocked(b.oldest)
	}
}

func (b *MemoryResultBus) removeLocked(k *keptResult) {
	b.unlinkLocked(k)
	delete(b.results, k.r.TaskID)
	b.bytes -= k.size
}

// pushLocked links k in as the newest result.
func (b *MemoryResultBus) pushLocked(k *keptResult) {
	k.prev, k.next = b.newest, nil
	if b.newest != nil {
		b.newest.next = k
	} else {
		b.oldest = k
	}
	b.newest = k
}

// unlinkLocked takes k out of the list.
func (b *MemoryResultBus) unlinkLocked(k *keptResult) {
	if k.prev != nil {
		k.prev.next = k.next
	} else {
		b.oldest = k.next
	}
	if k.next != nil {
		k.next.prev = k.prev
	} else {
		b.newest = k.prev
	}
	k.prev, k.next = nil, nil
}

// resultSize estimates the memory a kept result holds.
func resultSize(r *Result) int {
	return keptResultOverhead + len(r.TaskID) + len(r.VideoID) + len(r.VideoURL) +
		len(r.ImageURL) + len(r.Message) + len(r.Raw)
}
