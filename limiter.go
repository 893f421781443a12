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
// Each caller books the earliest free slot under the lock and waits outside it, so callers
// are served in arrival order. A caller whose context ends before its slot gives the slot
// back, and the slots booked after it are planned again from the slots that remain: callers
// already waiting move forward (and are woken to wait for their earlier start), so cancelled
// callers hold up neither later arrivals nor the callers queued behind them.
type submitLimiter struct {
	limit  int
	window time.Duration

	mu    sync.Mutex
	slots []*slot // booked start times in arrival order; those older than a window are dropped
}

// slot is one booking; release finds it by identity. at and wake are guarded by the
// limiter's mu: wake (the waiter's own cancel func, nil for a slot that starts at once)
// interrupts the waiter's sleep when at moves earlier.
type slot struct {
	at   time.Time
	wake func()
}

func newSubmitLimiter(limit int, window time.Duration) *submitLimiter {
	if limit <= 0 {
		return nil
	}
	return &submitLimiter{limit: limit, window: window + submitMargin, slots: make([]*slot, 0, limit)}
}

// earliest is the first start at or after now for the slot at index i, given the slots
// before it. Callers hold mu.
func (l *submitLimiter) earliest(i int, now time.Time) time.Time {
	at := now
	if i > 0 {
		at = later(at, l.slots[i-1].at)
		if i >= l.limit {
			at = later(at, l.slots[i-l.limit].at.Add(l.window))
		}
	}
	return at
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
	sl := &slot{at: l.earliest(len(l.slots), now)}
	l.slots = append(l.slots, sl)
	return sl
}

// release gives back a slot whose caller stopped waiting before its start, and plans the
// slots booked after it again: each moves to the earliest start the remaining slots allow
// (never later than before), and its waiter is woken to wait for the new start.
func (l *submitLimiter) release(sl *slot, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.slots) && l.slots[i] != sl {
		i++
	}
	if i == len(l.slots) {
		return
	}
	l.slots = append(l.slots[:i], l.slots[i+1:]...)
	for ; i < len(l.slots); i++ {
		s := l.slots[i]
		if !s.at.After(now) {
			continue // started (or starting): its time is history the window must keep
		}
		if at := l.earliest(i, now); at.Before(s.at) {
			s.at = at
			if s.wake != nil {
				s.wake()
			}
		}
	}
}

// plan is the start of sl as currently planned, and registers wake as the way to interrupt
// its waiter when that start moves.
func (l *submitLimiter) plan(sl *slot, wake func()) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	sl.wake = wake
	return sl.at
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// waitSubmitSlot blocks until the caller's slot, or until ctx ends (the slot is then given
// back). When an earlier caller gives its slot back, the wait is shortened to the slot's new
// start. A wait planned longer than slowSlotWait is logged at Info.
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
	if d > slowSlotWait {
		c.logger.LogAttrs(ctx, slog.LevelInfo, "runway: submission waits for a rate-limit slot",
			slog.Duration("wait", d))
	}
	start := now
	defer func() { c.obs.slotWaited(ctx, c.now().Sub(start)) }()
	for {
		// The sleep runs under a context of its own so that release can cut it short when
		// this slot moves earlier; the context costs no goroutine.
		sctx, wake := context.WithCancel(ctx)
		at := c.limiter.plan(sl, wake)
		err := sleepCtx(sctx, at.Sub(now))
		c.limiter.plan(sl, nil)
		wake()
		if err := ctx.Err(); err != nil {
			c.limiter.release(sl, c.now())
			return errorf("runway: waiting for a submission slot: %w", err)
		}
		now = c.now()
		if err == nil {
			return nil
		}
		// Woken because the slot moved: wait for its new start.
	}
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
