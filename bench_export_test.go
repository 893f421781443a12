package runway

import (
	"context"
	"time"
)

// Test-only exports for the runway_test benchmarks and tests, which live outside the package
// because they use runwaytest (which imports runway).

// SetClientClock replaces c's clock and sleeper, as in-package tests do with c.now/c.sleep.
func SetClientClock(c *Client, now func() time.Time, sleep func(context.Context, time.Duration) error) {
	c.now, c.sleep = now, sleep
}

// NewFakeClock returns the now and sleep functions of a fakeClock set to t: sleep advances
// the clock at once instead of waiting.
func NewFakeClock(t time.Time) (now func() time.Time, sleep func(context.Context, time.Duration) error) {
	clk := &fakeClock{t: t}
	return clk.now, clk.sleep
}
