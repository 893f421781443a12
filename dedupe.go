package runway

import (
	"container/heap"
	"context"
	"errors"
	"math"
	"strconv"
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

// DefaultDedupeTTL is how long NewMemoryDeduper remembers a processed task id when given a
// ttl <= 0. Kie retries a failed delivery after 1, 5 and 15 minutes, so an hour covers every
// redelivery with room to spare.
const DefaultDedupeTTL = time.Hour

// maxMemoryDedupeKeys bounds the memory deduper: at Kie's creation limit (20 tasks per 10 s)
// an hour of callbacks is 7200 keys, so the bound is only reached by a flood.
const maxMemoryDedupeKeys = 100000

// errDeduperFull is returned by the memory deduper's Claim when it holds its maximum number of
// unexpired keys and none can be given up: the handler answers 503 and Kie redelivers later.
// A claim is never evicted, and a done marker only once it is older than Kie's redelivery
// horizon (30 minutes), so a flood cannot make a task run twice.
var errDeduperFull = errors.New("runway: dedupe store full")

// kieRedeliveryHorizon is how long after a delivery Kie may still deliver the same task: its
// retries come 1, 5 and 15 minutes after a failure (21 minutes), rounded up. A done marker
// older than this guards against nothing Kie does, so a full deduper may give it up.
const kieRedeliveryHorizon = 30 * time.Minute

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
	return &memoryDeduper{ttl: ttl, max: max, now: now, entries: make(map[string]dedupeEntry)}
}

// memoryDeduper keeps each key as a 16-byte map value and one item in a min-heap of expiry
// times. Go maps never shrink, so the map (and the heap's array) are rebuilt once the live
// keys fall well below their peak: a burst of keys is given back after it expires.
type memoryDeduper struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]dedupeEntry
	peak    int        // most entries since the map was last rebuilt
	expiry  expiryHeap // one item per entry, plus stale ones left by Release and Done
	tokens  uint64     // the last token issued
}

// dedupeEntry is a claimed or processed key.
type dedupeEntry struct {
	token   uint64 // the claim's owner; 0 once done
	expires int64  // Unix nanoseconds
}

// minShrink is the peak below which the map and heap are not worth rebuilding.
const minShrink = 1024

// Claim implements Deduper. Tokens are unique per deduper; they need not be secret (they never
// leave the process).
func (d *memoryDeduper) Claim(_ context.Context, key string, ttl time.Duration) (ClaimStatus, string, error) {
	if key == "" {
		return 0, "", errors.New("runway: dedupe: empty key")
	}
	if ttl <= 0 {
		return 0, "", errors.New("runway: dedupe: claim ttl must be positive")
	}
	now := d.now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLocked(now)
	e, ok := d.entries[key]
	if ok && now < e.expires {
		if e.token == 0 {
			return ClaimDone, "", nil
		}
		return ClaimBusy, "", nil
	}
	if !ok && len(d.entries) >= d.max && !d.evictOldDoneLocked(now) {
		return 0, "", errDeduperFull
	}
	d.tokens++
	e = dedupeEntry{token: d.tokens, expires: addNanos(now, ttl)}
	d.entries[key] = e
	d.peak = max(d.peak, len(d.entries))
	d.expiry.push(expiryItem{key: key, at: e.expires})
	return ClaimAcquired, strconv.FormatUint(e.token, 10), nil
}

// Done implements Deduper.
func (d *memoryDeduper) Done(_ context.Context, key, token string) error {
	now := d.now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.ownedLocked(key, token, now)
	if err != nil {
		return err
	}
	exp := addNanos(now, d.ttl)
	if exp < e.expires {
		// The claim's item would surface too late; sweepLocked re-queues an item that
		// surfaces early, so a later expiry needs nothing.
		d.expiry.push(expiryItem{key: key, at: exp})
	}
	d.entries[key] = dedupeEntry{expires: exp}
	d.compactLocked()
	return nil
}

// Release implements Deduper.
func (d *memoryDeduper) Release(_ context.Context, key, token string) error {
	now := d.now().UnixNano()
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
func (d *memoryDeduper) ownedLocked(key, token string, now int64) (dedupeEntry, error) {
	tok, err := strconv.ParseUint(token, 10, 64)
	e, ok := d.entries[key]
	if err != nil || !ok || e.token == 0 || e.token != tok || now >= e.expires {
		return dedupeEntry{}, ErrClaimLost
	}
	return e, nil
}

// sweepLocked drops every entry whose expiry has passed. An item that surfaces before its
// entry's expiry (the claim's item after Done extended it) is queued again at the entry's
// expiry; items of released keys are dropped.
func (d *memoryDeduper) sweepLocked(now int64) {
	swept := false
	for len(d.expiry) > 0 && d.expiry[0].at <= now {
		it := d.expiry.pop()
		e, ok := d.entries[it.key]
		switch {
		case !ok:
		case e.expires <= now:
			delete(d.entries, it.key)
			swept = true
		default:
			d.expiry.push(expiryItem{key: it.key, at: e.expires})
		}
	}
	if swept && d.peak >= minShrink && len(d.entries) < d.peak/4 {
		d.rebuildLocked()
	}
}

// evictOldDoneLocked drops the done marker that expires first if it is older than
// kieRedeliveryHorizon, and reports whether it did. Every marker lives ttl from its Done, so
// the one expiring first is the oldest. Live claims expiring before it are stepped over (and
// put back): there are only as many as deliveries in progress.
func (d *memoryDeduper) evictOldDoneLocked(now int64) bool {
	var claims []expiryItem
	defer func() {
		for _, it := range claims {
			d.expiry.push(it)
		}
	}()
	for len(d.expiry) > 0 {
		it := d.expiry.pop()
		e, ok := d.entries[it.key]
		switch {
		case !ok:
			continue // stale item of a released or swept key
		case it.at < e.expires:
			d.expiry.push(expiryItem{key: it.key, at: e.expires}) // early item, as in sweepLocked
			continue
		case e.token != 0:
			claims = append(claims, it)
			continue
		}
		if now-(e.expires-int64(d.ttl)) < int64(kieRedeliveryHorizon) {
			d.expiry.push(it)
			return false
		}
		delete(d.entries, it.key)
		return true
	}
	return false
}

// compactLocked rebuilds once stale items (left by Release, and by Done when it shortens an
// expiry) outnumber the live entries, so claim/release churn cannot grow the heap without
// bound. Amortised O(1).
func (d *memoryDeduper) compactLocked() {
	if len(d.expiry) > 2*len(d.entries)+64 {
		d.rebuildLocked()
	}
}

// rebuildLocked makes a right-sized map and a heap of exactly one item per entry.
func (d *memoryDeduper) rebuildLocked() {
	entries := make(map[string]dedupeEntry, len(d.entries))
	h := make(expiryHeap, 0, len(d.entries))
	for k, e := range d.entries {
		entries[k] = e
		h = append(h, expiryItem{key: k, at: e.expires})
	}
	heap.Init(&h)
	d.entries, d.expiry, d.peak = entries, h, len(entries)
}

// addNanos returns now + d, saturating instead of overflowing.
func addNanos(now int64, d time.Duration) int64 {
	if now > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return now + int64(d)
}

type expiryItem struct {
	key string
	at  int64 // Unix nanoseconds
}

// expiryHeap is a min-heap of expiry items by time, kept with container/heap.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push and Pop implement heap.Interface; use push and pop.
func (h *expiryHeap) Push(x any) { *h = append(*h, x.(expiryItem)) }

func (h *expiryHeap) Pop() any {
	s := *h
	it := s[len(s)-1]
	s[len(s)-1] = expiryItem{}
	*h = s[:len(s)-1]
	return it
}

func (h *expiryHeap) push(it expiryItem) { heap.Push(h, it) }

func (h *expiryHeap) pop() expiryItem { return heap.Pop(h).(expiryItem) }
