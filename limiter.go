package runway

import (
	"context"
	"fmt"
	"log/slog"
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

// slowSlotWait is how long a submission may wait for a slot before the wait is logged at Info.
const slowSlotWait = time.Second

// submitLimiter is a sliding-window limiter: at most limit submissions start in any window.
// Each caller reserves the earliest free slot under the lock and waits outside it, so callers
// are served in arrival order; a caller whose context ends before its slot gives the slot
// back, so cancelled callers never hold up later ones.
type submitLimiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	slots []*slot // reserved start times, oldest first; those older than a window are dropped
}

// slot is one reservation; release finds it by identity.
type slot struct{ at time.Time }

func newSubmitLimiter(limit int, window time.Duration) *submitLimiter {
	if limit <= 0 {
		return nil
	}
	return &submitLimiter{limit: limit, window: window + submitMargin, slots: make([]*slot, 0, limit)}
}

// reserve books the earliest start at or after now that keeps at most limit starts in any
// window, after every slot already booked (arrival order).
func (l *submitLimiter) reserve(now time.Time) *slot {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Starts a whole window old no longer constrain anything from now on.
	drop := 0
	for drop < len(l.slots) && !l.slots[drop].at.After(now.Add(-l.window)) {
		drop++
	}
	if drop > 0 {
		l.slots = append(l.slots[:0], l.slots[drop:]...)
	}
	at := now
	if n := len(l.slots); n > 0 {
		at = later(at, l.slots[n-1].at)
		if n >= l.limit {
			at = later(at, l.slots[n-l.limit].at.Add(l.window))
		}
	}
	sl := &slot{at: at}
	l.slots = append(l.slots, sl)
	return sl
}

// release gives back a slot whose caller stopped waiting before its start.
func (l *submitLimiter) release(sl *slot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.slots {
		if s == sl {
			l.slots = append(l.slots[:i], l.slots[i+1:]...)
			return
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// waitSubmitSlot blocks until the caller's slot, or until ctx ends (the slot is then given
// back). A wait longer than slowSlotWait is logged at Info.
func (c *Client) waitSubmitSlot(ctx context.Context) error {
	if c.limiter == nil {
		return nil
	}
	now := c.now()
	sl := c.limiter.reserve(now)
	d := sl.at.Sub(now)
	if d <= 0 {
		return nil
	}
	c.obs.slotWaited(ctx, d)
	if d > slowSlotWait {
		c.logger.LogAttrs(ctx, slog.LevelInfo, "runway: submission waits for a rate-limit slot",
			slog.Duration("wait", d))
	}
	if err := sleepCtx(ctx, d); err != nil {
		c.limiter.release(sl)
		return errorf("runway: waiting for a submission slot: %w", err)
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
