package runway

import (
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"
)

// DefaultDedupeTTL is how long NewMemoryDeduper remembers a processed task id when given a
// ttl <= 0. Kie retries a failed delivery after 1, 5 and 15 minutes, so an hour covers every
// redelivery with room to spare.
const DefaultDedupeTTL = time.Hour

// maxMemoryDedupeKeys bounds the memory deduper: at Kie's creation limit (20 tasks per 10 s)
// an hour of callbacks is 7200 keys, so the bound is only reached by a flood.
const maxMemoryDedupeKeys = 100000

// ErrDeduperFull is returned by the memory deduper's Claim when it holds its maximum number of
// unexpired keys. The handler answers 503 and Kie redelivers later; nothing already claimed or
// done is evicted, so a flood cannot make a task run twice.
var ErrDeduperFull = errors.New("runway: dedupe store full")

// NewMemoryDeduper returns an in-process Deduper that remembers a processed key for ttl
// (DefaultDedupeTTL when ttl <= 0) and holds at most 100 000 unexpired keys. It deduplicates
// only the deliveries that reach this process; use a shared store (redisstore) when several
// replicas receive callbacks.
func NewMemoryDeduper(ttl time.Duration) Deduper {
	return newMemoryDeduper(ttl, maxMemoryDedupeKeys, time.Now)
}

func newMemoryDeduper(ttl time.Duration, max int, now func() time.Time) *memoryDeduper {
	if ttl <= 0 {
		ttl = DefaultDedupeTTL
	}
	return &memoryDeduper{ttl: ttl, max: max, now: now, entries: make(map[string]*dedupeEntry)}
}

type memoryDeduper struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*dedupeEntry
	expiry  expiryHeap // may hold stale items; each is checked against its entry's gen
	gen     uint64
}

type dedupeEntry struct {
	token   string
	done    bool
	expires time.Time
	gen     uint64 // identifies the expiry item that currently describes this entry
}

// Claim implements Deduper.
func (d *memoryDeduper) Claim(_ context.Context, key string, ttl time.Duration) (ClaimStatus, string, error) {
	if key == "" {
		return 0, "", errors.New("runway: dedupe: empty key")
	}
	if ttl <= 0 {
		return 0, "", errors.New("runway: dedupe: claim ttl must be positive")
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLocked(now)
	if e, ok := d.entries[key]; ok {
		if e.done {
			return ClaimDone, "", nil
		}
		return ClaimBusy, "", nil
	}
	if len(d.entries) >= d.max {
		return 0, "", ErrDeduperFull
	}
	e := &dedupeEntry{token: rand.Text()}
	d.entries[key] = e
	d.setExpiryLocked(key, e, now.Add(ttl))
	return ClaimAcquired, e.token, nil
}

// Done implements Deduper.
func (d *memoryDeduper) Done(_ context.Context, key, token string) error {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.ownedLocked(key, token, now)
	if err != nil {
		return err
	}
	e.done = true
	e.token = ""
	d.setExpiryLocked(key, e, now.Add(d.ttl))
	d.compactLocked()
	return nil
}

// Release implements Deduper.
func (d *memoryDeduper) Release(_ context.Context, key, token string) error {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.ownedLocked(key, token, now); err != nil {
		return err
	}
	delete(d.entries, key)
	d.compactLocked()
	return nil
}

// ownedLocked returns key's entry if token holds an unexpired claim on it.
func (d *memoryDeduper) ownedLocked(key, token string, now time.Time) (*dedupeEntry, error) {
	e, ok := d.entries[key]
	if !ok || e.done || token == "" || e.token != token || !now.Before(e.expires) {
		return nil, ErrClaimLost
	}
	return e, nil
}

func (d *memoryDeduper) setExpiryLocked(key string, e *dedupeEntry, at time.Time) {
	d.gen++
	e.gen = d.gen
	e.expires = at
	heap.Push(&d.expiry, expiryItem{key: key, at: at, gen: d.gen})
}

// sweepLocked drops every entry whose expiry has passed. Items made stale by a later Done or
// a Release are discarded as they surface (or by compactLocked).
func (d *memoryDeduper) sweepLocked(now time.Time) {
	for len(d.expiry) > 0 && !now.Before(d.expiry[0].at) {
		it := heap.Pop(&d.expiry).(expiryItem)
		if e, ok := d.entries[it.key]; ok && e.gen == it.gen {
			delete(d.entries, it.key)
		}
	}
}

// compactLocked rebuilds the heap from the live entries once stale items (left by Done and
// Release) outnumber them, so claim/release churn cannot grow it without bound. Amortised O(1).
func (d *memoryDeduper) compactLocked() {
	if len(d.expiry) <= 2*len(d.entries)+64 {
		return
	}
	h := make(expiryHeap, 0, len(d.entries))
	for k, e := range d.entries {
		h = append(h, expiryItem{key: k, at: e.expires, gen: e.gen})
	}
	heap.Init(&h)
	d.expiry = h
}

type expiryItem struct {
	key string
	at  time.Time
	gen uint64
}

// expiryHeap is a min-heap of expiry items by time.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = expiryItem{}
	*h = old[:len(old)-1]
	return it
}
