package runway

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ClaimStatus is the outcome of Deduper.Claim.
type ClaimStatus int

// Claim outcomes.
const (
	// ClaimAcquired: the caller owns the key and must call Done or Release with the token.
	ClaimAcquired ClaimStatus = iota + 1
	// ClaimBusy: another delivery (on this or another replica) holds an unexpired claim.
	ClaimBusy
	// ClaimDone: the key was processed successfully before; do nothing.
	ClaimDone
)

// ErrClaimLost is returned by Done or Release when the token no longer owns the key (the
// claim expired and someone else may have claimed it).
var ErrClaimLost = errors.New("runway: dedupe claim lost")

// Deduper turns Kie's at-least-once callback delivery into at-most-once processing. Its three
// operations are each a single atomic step so that a shared store (Redis: SET NX PX, and
// compare-and-set scripts keyed by the token) can implement it.
type Deduper interface {
	// Claim atomically takes key for at most ttl. On ClaimAcquired it returns a fresh owner
	// token; a claim that is neither marked done nor released lapses after ttl, so a crashed
	// processor's work is retried.
	Claim(ctx context.Context, key string, ttl time.Duration) (status ClaimStatus, token string, err error)
	// Done marks key processed if token still owns it. The done marker is kept for the
	// deduper's retention period (longer than Kie's retry horizon of about 21 minutes).
	Done(ctx context.Context, key, token string) error
	// Release drops the claim if token still owns it, so a retried delivery can claim it.
	Release(ctx context.Context, key, token string) error
}

// ResultBus carries accepted results to every waiter, on this replica and on others, and
// keeps each result for a while so that a WaitForResult that starts late returns it at once.
// The default is in-process (NewMemoryResultBus); redisstore provides a shared one.
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

// Default retention of the in-memory result bus.
const (
	DefaultResultTTL        = 30 * time.Minute
	DefaultMaxKeptResults   = 10000
	defaultMemoryBusListens = 1
)

// MemoryResultBus is an in-process ResultBus with bounded time and count.
type MemoryResultBus struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu        sync.Mutex
	results   map[string]keptResult
	order     []keptKey // insertion order, for eviction by age and count
	head      int
	listeners map[int]func(*Result)
	nextID    int
}

type keptResult struct {
	r       *Result
	expires time.Time
}

type keptKey struct {
	taskID  string
	expires time.Time
}

// NewMemoryResultBus returns an in-process bus that keeps each result for ttl and at most
// max results (oldest evicted first). ttl <= 0 or max <= 0 select the defaults.
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
		now:       time.Now,
		results:   make(map[string]keptResult),
		listeners: make(map[int]func(*Result), defaultMemoryBusListens),
	}
}

// Publish implements ResultBus. Listeners run synchronously on the caller's goroutine.
func (b *MemoryResultBus) Publish(_ context.Context, r *Result) error {
	if r == nil || r.TaskID == "" {
		return errors.New("runway: publish: result without task id")
	}
	now := b.now()
	b.mu.Lock()
	b.evictLocked(now)
	exp := now.Add(b.ttl)
	if _, ok := b.results[r.TaskID]; !ok {
		b.order = append(b.order, keptKey{taskID: r.TaskID, expires: exp})
	}
	b.results[r.TaskID] = keptResult{r: r, expires: exp}
	for len(b.results) > b.max {
		b.popOldestLocked()
	}
	fns := make([]func(*Result), 0, len(b.listeners))
	for _, fn := range b.listeners {
		fns = append(fns, fn)
	}
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
	k, ok := b.results[taskID]
	if !ok || !now.Before(k.expires) {
		return nil, nil
	}
	return k.r, nil
}

// Listen implements ResultBus.
func (b *MemoryResultBus) Listen(fn func(*Result)) (stop func()) {
	b.mu.Lock()
	id := b.nextID
	b.nextID++
	b.listeners[id] = fn
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.listeners, id)
			b.mu.Unlock()
		})
	}
}

// Len returns the number of results currently kept (expired ones may be counted until the
// next Publish evicts them).
func (b *MemoryResultBus) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.results)
}

func (b *MemoryResultBus) evictLocked(now time.Time) {
	for b.head < len(b.order) && !now.Before(b.order[b.head].expires) {
		b.popOldestLocked()
	}
}

func (b *MemoryResultBus) popOldestLocked() {
	if b.head >= len(b.order) {
		return
	}
	k := b.order[b.head]
	b.order[b.head] = keptKey{}
	b.head++
	// Only delete if the kept entry is the one this order slot describes (a re-publish
	// refreshes the map entry but keeps its first slot).
	if cur, ok := b.results[k.taskID]; ok && !cur.expires.After(k.expires) {
		delete(b.results, k.taskID)
	} else if ok {
		b.order = append(b.order, keptKey{taskID: k.taskID, expires: cur.expires})
	}
	if b.head > 1024 && b.head*2 > len(b.order) {
		b.order = append([]keptKey(nil), b.order[b.head:]...)
		b.head = 0
	}
}

// hub is the in-process registry of WaitForResult callers, keyed by task id. Results reach it
// from the ResultBus listener; waiters register before they look the result up, so a result
// published in between is never missed.
type hub struct {
	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{}
}

type waiter struct {
	ch chan *Result // buffered(1); receives at most one result
}

func newHub() *hub { return &hub{waiters: make(map[string]map[*waiter]struct{})} }

// register adds a waiter for taskID. The caller must call unregister when done.
func (h *hub) register(taskID string) *waiter {
	w := &waiter{ch: make(chan *Result, 1)}
	h.mu.Lock()
	set := h.waiters[taskID]
	if set == nil {
		set = make(map[*waiter]struct{}, 1)
		h.waiters[taskID] = set
	}
	set[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *hub) unregister(taskID string, w *waiter) {
	h.mu.Lock()
	if set := h.waiters[taskID]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(h.waiters, taskID)
		}
	}
	h.mu.Unlock()
}

// deliver hands r to every waiter of r.TaskID without blocking.
func (h *hub) deliver(r *Result) {
	if r == nil {
		return
	}
	h.mu.Lock()
	for w := range h.waiters[r.TaskID] {
		select {
		case w.ch <- r:
		default:
		}
	}
	h.mu.Unlock()
}

// len returns the number of task ids with at least one waiter.
func (h *hub) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters)
}
