package runway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrJournal matches the error a submission returns, together with the task id, when the
// task was created but could not be written to the journal (WithJournal). The task exists and
// is billed; it is not submitted again. Keep the id (or journal it yourself) if the outcome
// matters.
var ErrJournal = errors.New("runway: journal")

// Journal is the SDK's durable memory of submitted tasks whose outcome has not been handled
// yet, so that a restarted process (or another replica) can finish the job with
// CallbackHandler.Reconcile. NewFileJournal is the embedded implementation; redisstore.Store
// is a shared one. Implementations must be safe for concurrent use, and each operation must
// be durable when it returns.
type Journal interface {
	// Add records e (replacing an entry with the same TaskID).
	Add(ctx context.Context, e JournalEntry) error
	// Remove forgets taskID. Removing an id that is not there is not an error.
	Remove(ctx context.Context, taskID string) error
	// Pending returns every entry recorded and not removed, in no particular order.
	Pending(ctx context.Context) ([]JournalEntry, error)
}

// JournalEntry is one pending task.
type JournalEntry struct {
	// TaskID is the task's id.
	TaskID string `json:"id"`
	// Aleph reports that the task is polled on the Aleph details endpoint.
	Aleph bool `json:"aleph,omitempty"`
	// SubmittedAt is when the submission returned the id. Reconcile abandons a task older
	// than TaskRetention; zero means unknown, and such an entry is never abandoned for age.
	SubmittedAt time.Time `json:"at"`
	// Meta is the request's Meta.
	Meta map[string]string `json:"meta,omitempty"`
}

// JournalReader is an optional interface of a Journal: it returns the entry of one task, so
// that a result reaching the SDK by a callback or a poll carries its Meta. FileJournal and
// redisstore.Store implement it. With a Journal that does not, Result.Meta is nil.
type JournalReader interface {
	// Entry returns taskID's entry, or (nil, nil) when there is none.
	Entry(ctx context.Context, taskID string) (*JournalEntry, error)
}

// LeasingJournal is an optional interface of a Journal shared by several replicas. When the
// client's journal implements it, Reconcile polls only the entries it holds a lease on, so that
// each pending task is polled by one live replica at a time: it takes free or expired leases
// with Lease (up to a cap per replica, so that the replicas share the work), renews the ones
// it holds every third of LeaseTTL or of the poll interval, whichever is shorter, with Renew,
// and hands them back with Unlease when it returns. A replica that dies stops renewing, and
// its tasks are leased by another replica once LeaseTTL has passed (see Reconcile for the
// bound). redisstore.Store implements it.
type LeasingJournal interface {
	Journal
	// Lease takes up to max entries that no owner holds an unexpired lease on, for owner, for
	// LeaseTTL.
	Lease(ctx context.Context, owner string, max int) ([]JournalEntry, error)
	// Renew extends owner's leases on taskIDs by LeaseTTL and returns the ids owner no longer
	// holds (their lease expired and was taken, or the entry was removed).
	Renew(ctx context.Context, owner string, taskIDs []string) (lost []string, err error)
	// Unlease gives owner's leases on taskIDs back, so that another replica takes them at once.
	Unlease(ctx context.Context, owner string, taskIDs []string) error
	// LeaseTTL is how long a lease lasts without renewal.
	LeaseTTL() time.Duration
}

// WithJournal makes the client record every submission whose task id is known in j before
// Generate, Extend or GenerateAleph returns, and remove the entry once the outcome was
// handled: the CallbackHandler's result func returned nil for it, WaitForResult returned a
// terminal result it polled itself, or CallbackHandler.Reconcile delivered it. (A result that
// reaches WaitForResult from a callback or the ResultBus leaves the entry to the handler that
// delivered it, which removes it only once its result func succeeded.) Run Reconcile at start-up to
// finish the tasks a previous process left pending. The client never closes j. nil is an
// error.
func WithJournal(j Journal) Option {
	return Option{func(c *clientConfig) error {
		if j == nil {
			return errors.New("WithJournal: nil journal")
		}
		c.journal = j
		return nil
	}}
}

// journalOpTimeout bounds a journal operation that outlives its caller's context (a
// submission whose caller gave up right after the task was created must still be journaled).
const journalOpTimeout = storeTimeout

// maxSettledIDs bounds the memory of recently settled task ids (see journalHook).
const maxSettledIDs = 100000

// journalHook is the client's side of its Journal.
//
// A callback can beat the submission's response, so an outcome can be handled (and its entry
// removed, a no-op then) before the submission's Add. The hook remembers the ids it removed,
// and an Add that completes after a removal of the same id removes the entry again, so that
// it neither lingers nor is delivered a second time. Between processes (a callback handled on
// another replica) the deduper's done marker plays that part: Reconcile removes an entry whose
// task the deduper reports as processed, without delivering it.
type journalHook struct {
	j      Journal
	reader JournalReader // nil when j cannot look entries up
	log    *slog.Logger
	obs    *observer // the client's; nil without one
	now    func() time.Time

	mu         sync.Mutex
	settled    *idSet
	watchers   map[int]func(JournalEntry)
	nextID     int
	seq        uint64              // submissions begun
	submitting map[uint64]struct{} // submissions begun and not yet journaled (or failed)
	changed    chan struct{}       // closed and replaced when a submission ends
}

func newJournalHook(j Journal, log *slog.Logger, obs *observer, now func() time.Time) *journalHook {
	h := &journalHook{j: j, log: log, obs: obs, now: now, settled: newIDSet(maxSettledIDs), watchers: make(map[int]func(JournalEntry)),
		submitting: make(map[uint64]struct{}), changed: make(chan struct{})}
	h.reader, _ = j.(JournalReader)
	return h
}

// add journals a submitted task. The error matches ErrJournal.
func (h *journalHook) add(ctx context.Context, e JournalEntry) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalOpTimeout)
	defer cancel()
	start := h.now()
	err := h.j.Add(ctx, e)
	h.obs.journalWrite(ctx, JournalAdd, e.TaskID, start, err)
	if err != nil {
		return fmt.Errorf("%w: task %s created but not journaled: %w", ErrJournal, e.TaskID, err)
	}
	h.mu.Lock()
	settled := h.settled.has(e.TaskID)
	fns := make([]func(JournalEntry), 0, len(h.watchers))
	for _, fn := range h.watchers {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	if settled {
		h.remove(ctx, e.TaskID)
		return nil
	}
	for _, fn := range fns {
		fn(e)
	}
	return nil
}

// remove forgets a task whose outcome was handled. A failure is logged: the entry stays, and
// Reconcile finds the task processed (the deduper's done marker) and removes it then.
func (h *journalHook) remove(ctx context.Context, taskID string) {
	h.mu.Lock()
	h.settled.put(taskID, struct{}{})
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalOpTimeout)
	defer cancel()
	start := h.now()
	err := h.j.Remove(ctx, taskID)
	h.obs.journalWrite(ctx, JournalRemove, taskID, start, err)
	if err != nil {
		h.log.Warn("runway: removing a handled task from the journal failed",
			slog.String("task_id", taskID), slog.String("error", err.Error()))
	}
}

// beginSubmit marks a submission in progress until the returned func is called, after its
// journal Add (see metaWaiting).
func (h *journalHook) beginSubmit() (end func()) {
	h.mu.Lock()
	h.seq++
	n := h.seq
	h.submitting[n] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.submitting, n)
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}
}

// maxMetaWait bounds how long a callback waits for the journal entry of its task (see
// metaWaiting), well inside the result budget.
const maxMetaWait = 2 * time.Second

// metaRetryMin is the first pause before metaWaiting reads a missing entry again; each
// further pause doubles it.
const metaRetryMin = 50 * time.Millisecond

// metaWaiting returns the journaled Meta of taskID for a callback. A callback can beat the
// response of the submission that created its task, and so the task's journal entry: when
// the entry is missing while submissions of this client are in progress, it waits until the
// entry appears or every one of those submissions has ended. The submission may also be
// another replica's, still journaling on a shared journal: so a missing entry is read again
// after 50 ms, 100 ms, 200 ms... unless this client removed it itself. All of it takes at
// most maxMetaWait, and at most a quarter of what is left of ctx.
func (h *journalHook) metaWaiting(ctx context.Context, taskID string) map[string]string {
	if h.reader == nil {
		return nil
	}
	h.mu.Lock()
	var earlier []uint64
	for n := range h.submitting {
		earlier = append(earlier, n)
	}
	h.mu.Unlock()
	var timeout <-chan time.Time
	var retry *time.Timer
	pause := metaRetryMin
	for {
		h.mu.Lock()
		busy := false
		for _, n := range earlier {
			if _, ok := h.submitting[n]; ok {
				busy = true
				break
			}
		}
		changed := h.changed
		settled := h.settled.has(taskID)
		h.mu.Unlock()
		// Looked up after reading busy and changed: an Add completing after the lookup closes
		// changed, so it is never missed.
		e, ok := h.lookup(ctx, taskID)
		if ok || (!busy && settled) {
			return e
		}
		if timeout == nil {
			t := time.NewTimer(metaWaitLimit(ctx))
			defer t.Stop()
			timeout = t.C
		}
		var again <-chan time.Time
		if !busy {
			// Not this client's submission in progress: maybe another replica's.
			if retry == nil {
				retry = time.NewTimer(pause)
				defer retry.Stop()
			} else {
				retry.Reset(pause)
			}
			again = retry.C
			pause *= 2
		}
		select {
		case <-changed:
		case <-again:
		case <-timeout:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// metaWaitLimit is how long metaWaiting may wait: maxMetaWait, but never more than a quarter
// of what is left of ctx (the result budget), which the result func needs.
func metaWaitLimit(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(min(maxMetaWait, time.Until(dl)/4), 0)
	}
	return maxMetaWait
}

// meta returns the journaled Meta of taskID, or nil.
func (h *journalHook) meta(ctx context.Context, taskID string) map[string]string {
	m, _ := h.lookup(ctx, taskID)
	return m
}

// lookup returns the journaled Meta of taskID and whether the entry exists.
func (h *journalHook) lookup(ctx context.Context, taskID string) (map[string]string, bool) {
	if h.reader == nil {
		return nil, false
	}
	e, err := h.reader.Entry(ctx, taskID)
	if err != nil {
		h.log.Warn("runway: journal lookup failed; result without Meta",
			slog.String("task_id", taskID), slog.String("error", err.Error()))
		return nil, false
	}
	if e == nil {
		return nil, false
	}
	return e.Meta, true
}

// watch calls fn with every entry added from now on, until stop is called. fn must not block.
func (h *journalHook) watch(fn func(JournalEntry)) (stop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.nextID
	h.nextID++
	h.watchers[id] = fn
	return func() {
		h.mu.Lock()
		delete(h.watchers, id)
		h.mu.Unlock()
	}
}

// submitJournaled submits a task and, with a journal, records it before returning. aleph
// marks a task polled on the Aleph endpoint.
func (c *Client) submitJournaled(ctx context.Context, path string, body any, aleph bool, meta map[string]string) (string, error) {
	if c.jnl != nil {
		defer c.jnl.beginSubmit()()
	}
	id, err := c.submit(ctx, path, body)
	if err != nil {
		return id, err
	}
	if aleph {
		c.aleph.put(id, struct{}{})
	}
	if c.jnl == nil {
		return id, nil
	}
	e := JournalEntry{TaskID: id, Aleph: aleph, SubmittedAt: c.now(), Meta: cloneMeta(meta)}
	return id, c.jnl.add(ctx, e)
}

// ownSettled is own for the terminal result WaitForResult found by its own poll: with a
// journal, the copy gets the journaled Meta and, the outcome being handled, the task leaves
// the journal.
func (c *Client) ownSettled(ctx context.Context, r *Result) (*Result, error) {
	if c.jnl == nil {
		return c.own(r)
	}
	cp := *r
	if cp.Meta == nil {
		cp.Meta = c.jnl.meta(ctx, cp.TaskID)
	}
	c.jnl.remove(ctx, cp.TaskID)
	return c.own(&cp)
}

// ownReceived is own for a terminal result that reached WaitForResult from someone else (the
// hub or the ResultBus): a callback handler or Reconcile, here or on another replica, that
// publishes before it runs the result func. The entry stays: that deliverer removes it once
// the func succeeded, and a func that fails must leave it for Kie's retry or Reconcile.
func (c *Client) ownReceived(ctx context.Context, r *Result) (*Result, error) {
	if c.jnl == nil || r.Meta != nil {
		return c.own(r)
	}
	cp := *r
	cp.Meta = c.jnl.meta(ctx, cp.TaskID)
	return c.own(&cp)
}

// cloneMeta copies m, so that the caller may reuse its map.
func cloneMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	cp := make(map[string]string, len(m))
	for k, v := range m {
		cp[k] = v
	}
	return cp
}
