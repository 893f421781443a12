package runway

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Kie's documented account limit on new generation requests.
const (
	DefaultSubmitLimit  = 20
	DefaultSubmitWindow = 10 * time.Second
	// submitMargin pads the window so that requests spaced by exactly one window on the client
	// still arrive more than one window apart after network jitter.
	submitMargin = 250 * time.Millisecond
)

// submitLimiter is a sliding-window limiter: at most limit submissions start in any window.
// Each caller reserves the earliest free slot under the lock and waits outside it, so callers
// are served in arrival order and a cancelled wait never blocks others.
type submitLimiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	slots []time.Time // start times of the last limit submissions, a ring
	next  int
}

func newSubmitLimiter(limit int, window time.Duration) *submitLimiter {
	if limit <= 0 {
		return nil
	}
	return &submitLimiter{limit: limit, window: window + submitMargin, slots: make([]time.Time, 0, limit)}
}

// reserve returns when the caller may send, given the current time.
func (l *submitLimiter) reserve(now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := now
	if len(l.slots) < l.limit {
		l.slots = append(l.slots, at)
		return at
	}
	// The oldest of the last limit starts must leave the window before this one starts.
	if free := l.slots[l.next].Add(l.window); free.After(at) {
		at = free
	}
	l.slots[l.next] = at
	l.next = (l.next + 1) % l.limit
	return at
}

// wait blocks until the caller's slot, or until ctx ends.
func (c *Client) waitSubmitSlot(ctx context.Context) error {
	if c.limiter == nil {
		return nil
	}
	now := c.now()
	at := c.limiter.reserve(now)
	if d := at.Sub(now); d > 0 {
		c.obs.slotWaited(ctx, d)
		if err := c.sleep(ctx, d); err != nil {
			return fmt.Errorf("runway: waiting for a submission slot: %w", err)
		}
	}
	return nil
}

// WithSubmitRateLimit makes the client queue submissions (Generate, Extend, GenerateAleph) so
// that at most n start in any window, instead of collecting 429s. The default is Kie's
// documented per-account limit, DefaultSubmitLimit per DefaultSubmitWindow; n = 0 turns it
// off. Clients sharing one account share its limit: give each a share of it.
func WithSubmitRateLimit(n int, window time.Duration) Option {
	return Option{func(c *clientConfig) error {
		if n < 0 || (n > 0 && window <= 0) {
			return fmt.Errorf("WithSubmitRateLimit: need n >= 0 and a positive window, got %d per %s", n, window)
		}
		c.submitLimit, c.submitWindow = n, window
		c.submitLimitSet = true
		return nil
	}}
}
