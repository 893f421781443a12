package runway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// ErrUnknownState is what a *WaitError unwraps to when polling saw a task state the SDK does
// not know. The wait ends: an unknown state is never taken to mean "still running".
var ErrUnknownState = errors.New("runway: unknown task state")

const (
	// minPollInterval is the shortest interval WithPollInterval accepts, so that a typo
	// cannot turn a wait into a request storm.
	minPollInterval = time.Second
	// notFoundGrace is how long after a wait starts a "not found" from the details endpoint
	// (any of its spellings) means "not visible yet" (the task was created moments ago)
	// rather than "no such task".
	notFoundGrace = time.Minute
	// maxStateInError bounds how much of an unknown state string goes into an error.
	maxStateInError = 64
)

// WaitOption configures one WaitForResult call. Build it only with the With* functions; the
// zero WaitOption does nothing. A value that cannot work is refused, never replaced by the
// default (leave the option out for that): WaitForResult then returns every refused option in
// one error, one per line, before anything is sent.
type WaitOption struct {
	apply func(*waitConfig) error
}

type waitConfig struct {
	interval time.Duration
	timeout  time.Duration
	aleph    bool
	progress func(*Task)
}

// WithPollInterval sets the mean interval between polls (default DefaultPollInterval). Each
// interval is jittered by ±20% so that many waiters spread their polls. It must be positive;
// values under one second are raised to one second, so that a typo cannot turn a wait into a
// request storm.
func WithPollInterval(d time.Duration) WaitOption {
	return WaitOption{func(c *waitConfig) error {
		if d <= 0 {
			return invalid("WithPollInterval", "%s is not a positive interval; leave the option out for the default %s", d, DefaultPollInterval)
		}
		c.interval = max(d, minPollInterval)
		return nil
	}}
}

// WithWaitTimeout bounds the whole wait (default DefaultWaitTimeout): when it passes,
// WaitForResult returns a *WaitError matching ErrWaitTimeout. Poll requests and backoffs are
// charged against it. 0 means no timeout of its own (only the context bounds the wait); a
// negative value is an error.
func WithWaitTimeout(d time.Duration) WaitOption {
	return WaitOption{func(c *waitConfig) error {
		if d < 0 {
			return invalid("WithWaitTimeout", "negative timeout %s", d)
		}
		c.timeout = d
		return nil
	}}
}

// WithAleph polls the Aleph details endpoint (GetAlephTask) instead of the Runway one. Tasks
// submitted with GenerateAleph on the same client are polled there without it; use it when
// resuming a wait for an Aleph task id from elsewhere (another process, a database).
//
// Deprecated: Kie has discontinued Runway Aleph. WithAleph keeps working for waiting on Aleph
// tasks created before the shutdown (polling and callbacks both still decode them).
func WithAleph() WaitOption {
	return WaitOption{func(c *waitConfig) error {
		c.aleph = true
		return nil
	}}
}

// WithProgress calls fn with the polled task each time polling sees a new state (wait,
// queueing, generating, then success or fail), once per change. fn runs on the waiting
// goroutine: keep it short. A result delivered by a callback does not call fn. fn must not be
// nil.
func WithProgress(fn func(*Task)) WaitOption {
	return WaitOption{func(c *waitConfig) error {
		if fn == nil {
			return invalid("WithProgress", "nil func")
		}
		c.progress = fn
		return nil
	}}
}

// WaitForResult waits until task taskID finishes and returns its result. It returns on
// whichever comes first: a callback for the task accepted by this client's CallbackHandler
// (or published on its ResultBus by another replica), a result kept from a callback that
// arrived before the call, or a terminal state seen by polling. Polling starts at once, so a
// task that already finished (or a wait resumed after a restart) returns immediately, and
// goes on every poll interval with jitter; after a callback wins no further poll is sent. A
// result found by polling is published on the ResultBus, so other waiters for the task
// return too.
//
// Success returns (*Result, nil), with Source saying where the result came from. A task
// that failed returns (*Result, *TaskError). Everything else is a *WaitError carrying the
// task id and the last state polling saw: the wait timeout (ErrWaitTimeout), the context
// ending (its error), an unknown state (ErrUnknownState), or a permanent poll error such as
// 401, 402, 422 or a "not found" that lasts beyond a minute (the *APIError, so errors.Is(err,
// ErrUnauthorized) works). "Not found" is any of Kie's spellings of it: HTTP or body code 404,
// body code 422 "The record does not exist", or success with null data; all get the same
// minute of grace, since a task created moments ago may not be visible yet. When the wait
// times out or is cancelled while polls are failing, the last poll error stays reachable
// (WaitError.LastErr): errors.Is(err, ErrNotFound) then holds beside ErrWaitTimeout. Transient poll errors (network, 5xx except 501/505, 429, 455,
// also as envelope codes) do not end the wait: the next poll backs off with jitter, up to
// the poll interval or the server's Retry-After (itself capped at 10 minutes), whichever is
// larger, and never past the wait timeout. Invalid arguments return a *ValidationError before anything is sent.
//
// A wait holds no goroutine of its own and leaves no timer or registration behind.
func (c *Client) WaitForResult(ctx context.Context, taskID string, opts ...WaitOption) (res *Result, err error) {
	cfg := waitConfig{interval: DefaultPollInterval, timeout: DefaultWaitTimeout}
	var errs []error
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := validTaskID("taskID", taskID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	if len(errs) > 1 {
		return nil, errors.Join(errs...)
	}
	run := &waitRun{c: c, taskID: taskID, cfg: cfg, aleph: cfg.aleph || c.aleph.has(taskID), start: c.now()}
	if cfg.timeout > 0 {
		run.deadline = run.start.Add(cfg.timeout)
	}
	ctx, op := c.obs.start(ctx, OpWait, taskID)
	defer c.obs.waitEnd(op, run, &res, &err)

	// Register before the lookup: a result published between the two reaches the channel.
	w := c.hub.register(taskID)
	defer c.hub.unregister(taskID, w)
	if r, err := c.bus.Lookup(ctx, taskID); err != nil {
		c.logger.LogAttrs(ctx, slog.LevelWarn, "runway: result bus lookup failed; polling",
			slog.String("task_id", taskID), slog.String("error", err.Error()))
	} else if r != nil {
		return c.ownReceived(ctx, r)
	}

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case r := <-w.ch:
			return c.ownReceived(ctx, r)
		default:
		}
		r, delay, err := run.poll(ctx)
		if err != nil {
			return nil, err
		}
		if r != nil {
			c.obs.result(ctx, r)
			if err := c.bus.Publish(ctx, r); err != nil {
				c.logger.LogAttrs(ctx, slog.LevelWarn, "runway: publishing a polled result failed",
					slog.String("task_id", taskID), slog.String("error", err.Error()))
			}
			return c.ownSettled(ctx, r)
		}
		delay, last := run.clip(delay)
		if timer == nil {
			timer = time.NewTimer(delay)
		} else {
			timer.Reset(delay)
		}
		select {
		case r := <-w.ch:
			return c.ownReceived(ctx, r)
		case <-ctx.Done():
			return nil, run.fail(ctx.Err())
		case <-timer.C:
			if last {
				return nil, run.fail(ErrWaitTimeout)
			}
		}
	}
}

// resync runs when the bus reports (ResyncNotifier) that its delivery resumed after a gap:
// one pass over the task ids waited on, one Lookup each, handing what it finds to the
// waiters. It stops at the first failed lookup (the bus is down again and will report the
// next resync); the waiters left out still have their polls.
func (c *Client) resync(ctx context.Context) {
	ids := c.hub.ids()
	for i, id := range ids {
		r, err := c.bus.Lookup(ctx, id)
		if err != nil {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "runway: result bus resync lookup failed; waiters fall back to polling",
				slog.Int("skipped", len(ids)-i), slog.String("error", err.Error()))
			return
		}
		c.hub.deliver(r)
	}
}

// waitRun is the state of one WaitForResult call.
type waitRun struct {
	c        *Client
	taskID   string
	cfg      waitConfig
	aleph    bool
	start    time.Time
	deadline time.Time // zero: bounded by the context only
	last     State     // last known state polling saw
	lastErr  error     // error of the last poll; nil after a successful one
	failures int       // consecutive transient poll errors
	polls    int       // details requests made
}

// poll fetches the task once. It returns the result of a terminal task, or the delay before
// the next poll, or a *WaitError that ends the wait.
func (run *waitRun) poll(ctx context.Context) (*Result, time.Duration, error) {
	pctx := ctx
	if !run.deadline.IsZero() {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, run.deadline.Sub(run.c.now()))
		defer cancel()
	}
	run.polls++
	t, err := run.c.getTask(pctx, run.taskID, run.aleph, 0)
	if err != nil {
		delay, err := run.retryDelay(ctx, pctx, err)
		return nil, delay, err
	}
	run.failures, run.lastErr = 0, nil
	if !t.State.Known() {
		return nil, 0, run.fail(fmt.Errorf("%w %q", ErrUnknownState, printable(string(t.State), maxStateInError)))
	}
	if t.State != run.last {
		run.last = t.State
		if run.cfg.progress != nil {
			run.cfg.progress(t)
		}
	}
	if !t.State.Terminal() {
		return nil, jitter(run.cfg.interval), nil
	}
	r := t.Result()
	// Key the result by the id waited on: it is what the bus and the hub index.
	r.TaskID = run.taskID
	return r, 0, nil
}

// maxPollRetryAfter caps how long one Retry-After may delay the next poll.
const maxPollRetryAfter = 10 * time.Minute

// pollRetryAfter is the pause a failed poll's answer asks for, at most maxPollRetryAfter: a
// hostile or mistaken Retry-After must not park a wait that has no timeout for a day.
func pollRetryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return min(ae.RetryAfter, maxPollRetryAfter)
	}
	return 0
}

// retryDelay decides what a failed poll means: the delay before the next poll for a
// transient error (and a 404 during the grace period), or a *WaitError that ends the wait.
// The delay is full-jitter exponential from the client's retry minimum, capped at the poll
// interval or the server's Retry-After, whichever is larger.
func (run *waitRun) retryDelay(ctx, pctx context.Context, err error) (time.Duration, error) {
	switch {
	case ctx.Err() != nil:
		return 0, run.fail(ctx.Err())
	case pctx.Err() != nil:
		return 0, run.fail(ErrWaitTimeout)
	default:
		switch decide(kindPoll, answerOf(err), true) {
		case verdictRetry:
		case verdictNotFound:
			if run.c.now().Sub(run.start) >= notFoundGrace {
				return 0, run.fail(err)
			}
		default:
			return 0, run.fail(err)
		}
	}
	run.failures++
	run.lastErr = err
	retryAfter := pollRetryAfter(err)
	ceil := max(run.cfg.interval, retryAfter)
	delay := backoff(min(run.c.waitMin, ceil), ceil, run.failures, retryAfter)
	run.c.logger.LogAttrs(ctx, slog.LevelDebug, "runway: poll failed; retrying",
		slog.String("task_id", run.taskID), slog.Int("failures", run.failures),
		slog.Duration("wait", delay), slog.String("reason", retryReason(err)))
	return delay, nil
}

// garbled2xx reports a 2xx response whose body was not the API's envelope.
func garbled2xx(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == 0 && ae.StatusCode/100 == 2
}

// fail ends the wait with a *WaitError. When the wait timed out or was cancelled, the error
// of the last poll (if it failed) rides along as LastErr.
func (run *waitRun) fail(err error) error {
	we := &WaitError{TaskID: run.taskID, LastState: run.last, Err: err}
	if err == ErrWaitTimeout || err == context.Canceled || err == context.DeadlineExceeded {
		we.LastErr = run.lastErr
	}
	return we
}

// clip shortens delay so that the wait never sleeps past its deadline; last reports that the
// sleep ends at the deadline.
func (run *waitRun) clip(delay time.Duration) (time.Duration, bool) {
	if run.deadline.IsZero() {
		return delay, false
	}
	if left := run.deadline.Sub(run.c.now()); left <= delay {
		return max(left, 0), true
	}
	return delay, false
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	spread := d / 5
	return d - spread + rand.N(2*spread+1)
}
