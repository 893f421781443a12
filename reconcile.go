package runway

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// ErrAbandoned matches the error Reconcile reports (to WithAbandoned's function and in its
// Error log) for a journaled task it stopped following: the API answered "not found" for
// too long (see Reconcile), or the task is older than Kie's 14-day retention.
var ErrAbandoned = errors.New("runway: task abandoned")

// TaskRetention is how long Kie keeps a task's details: Reconcile abandons a journaled task
// submitted longer ago than this.
const TaskRetention = 14 * 24 * time.Hour

const (
	// reconcileWorkers is how many polls (and deliveries) Reconcile runs at once.
	reconcileWorkers = 64
	// leaseBatch is how many entries one LeasingJournal.Lease call asks for at most.
	leaseBatch = 1000
	// leasesPerIntervalSecond is how many leases a replica holds at most per second of poll
	// interval (maxLeases): what its reconcileWorkers pollers keep up with at one poll per
	// task per interval when a poll takes about 0.64 s, i.e. 100 polls a second; 3 000 with
	// the default interval. The rest stays free for the other replicas, and for this one as
	// the tasks it holds finish.
	leasesPerIntervalSecond = 100
	// renewBatch is how many ids one LeasingJournal.Renew or Unlease call carries.
	renewBatch = 1000
	// reconcileNotFoundGrace is how long Reconcile keeps a task the API answers "not found"
	// for, counted from the first such answer, before abandoning it; it also takes
	// reconcileNotFoundAnswers such answers in a row. Much longer than WaitForResult's minute:
	// an entry costs nothing to keep, while abandoning a paid task on a brief outage of Kie
	// (answering 404 or null data for everything) loses it for good.
	reconcileNotFoundGrace   = 30 * time.Minute
	reconcileNotFoundAnswers = 5
	// maxPollBackoffFactor caps the backoff of a task whose polls keep failing at this many
	// poll intervals (or the server's Retry-After, if longer).
	maxPollBackoffFactor = 8
)

// errClaimBusy: a callback for the task is being processed right now.
var errClaimBusy = errors.New("runway: task is being processed by a callback")

// WithAbandoned sets a function called by Reconcile for each journaled task it gives up on
// (the error matches ErrAbandoned and, for a task the API no longer knows, ErrNotFound), just
// before it removes the entry. The task's outcome is lost to the SDK: record it for a person
// to look at. Reconcile also logs it at Error level. fn runs on one of Reconcile's
// goroutines; a panic in it is logged and otherwise ignored.
func WithAbandoned(fn func(ctx context.Context, e JournalEntry, err error)) CallbackOption {
	return CallbackOption{func(c *callbackConfig) error {
		if fn == nil {
			return errors.New("WithAbandoned: nil func; leave the option out to only log abandoned tasks")
		}
		c.abandoned = fn
		return nil
	}}
}

// Reconcile finishes the tasks in the client's journal (WithJournal): it polls every
// pending entry, those present when it starts and those added while it runs, and delivers
// each terminal outcome exactly as a callback would be: the same Deduper claim (a task a
// callback processed is not delivered again, and its entry is removed), the same result func,
// the client's waiters woken, with Result.Source == SourcePoll and Result.Meta from the
// journal; then it removes the entry. A result func that fails leaves the entry for a later
// interval. A task the API no longer knows, or older than TaskRetention, is logged at Error
// level, reported to WithAbandoned's function, and removed. "No longer knows" takes at least
// five "not found" answers in a row spanning 30 minutes from the first of them (for a task
// submitted over 30 minutes ago): unlike WaitForResult's one minute, a brief outage of the
// API that answers "not found" for everything must not abandon every pending task, and an
// entry costs nothing to keep.
//
// Each task is polled at most once per poll interval (WithPollInterval, default
// DefaultPollInterval; the other WaitOptions are ignored: each entry says which endpoint to
// poll), at a phase of its own spread over the interval and jittered, so that many pending
// tasks never poll in bursts. A poll that fails with a transient error (network, 429, 5xx)
// backs that task off exponentially, honouring Retry-After. The entries are re-read from the
// journal every interval, and entries this client adds are picked up at once. When the
// journal is a LeasingJournal shared by several replicas, each replica polls only the tasks it
// holds a lease on (see LeasingJournal). Those replicas must share the handler's Deduper too
// (WithDeduper, for instance the same redisstore.Store): with the default in-memory deduper,
// a task whose callback one replica processed may be delivered again by another replica's
// Reconcile, so Reconcile logs that configuration at Error level when it starts. It renews them and takes free ones every third of the
// lease TTL or of the poll interval, whichever is shorter, and holds at most 100 leases per
// second of poll interval (3 000 with the default), the polls its 64 pollers keep up with, so
// that the replicas share the work: the tasks beyond that stay free for the other replicas.
// A replica that dies stops renewing; the others take its tasks once its leases lapse and poll
// each within an interval: with redisstore's default lease TTL (60 s) and the default
// interval, within 100 s of the crash, as long as the survivors have room under their cap.
//
// Reconcile runs until ctx ends and returns ctx's error. It returns an error at once when the
// handler was not built by Client.CallbackHandler or the client has no journal. Run one
// Reconcile per client, for instance in a goroutine started next to the HTTP server.
func (h *CallbackHandler) Reconcile(ctx context.Context, opts ...WaitOption) error {
	if h.client == nil {
		return errors.New("runway: Reconcile needs a handler built by Client.CallbackHandler")
	}
	if h.client.jnl == nil {
		return errors.New("runway: Reconcile needs a client built with WithJournal")
	}
	cfg := waitConfig{interval: DefaultPollInterval}
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return err
		}
	}
	rc := &reconciler{
		h:        h,
		c:        h.client,
		j:        h.client.jnl.j,
		interval: cfg.interval,
		tasks:    make(map[string]*recTask),
		added:    make(chan struct{}, 1),
		workers:  reconcileWorkers,
	}
	rc.lj, _ = rc.j.(LeasingJournal)
	if rc.lj != nil {
		rc.owner = randomToken()
		rc.maxLeases = maxLeases(rc.interval)
		if _, ok := h.dedupe.(*memoryDeduper); ok {
			h.log.LogAttrs(ctx, slog.LevelError, "runway: reconcile shares a leasing journal between replicas but dedupes in memory: "+
				"a task whose callback one replica processed can be delivered again by another replica's Reconcile; "+
				"give the handler a shared deduper (WithDeduper, e.g. the same redisstore.Store)")
		}
	}
	return rc.run(ctx)
}

// forget removes a task whose callback was processed from the client's journal.
func (h *CallbackHandler) forget(ctx context.Context, taskID string) {
	if h.client != nil && h.client.jnl != nil {
		h.client.jnl.remove(ctx, taskID)
	}
}

// addMeta gives a result the Meta journaled with its task, if any.
func (h *CallbackHandler) addMeta(ctx context.Context, r *Result) {
	if r.Meta == nil && h.client != nil && h.client.jnl != nil {
		r.Meta = h.client.jnl.metaWaiting(ctx, r.TaskID)
	}
}

// deliverPolled delivers a terminal result found by Reconcile through the handler's
// deduper and result func. Its outcome is ReconcileDelivered (the result func ran now),
// ReconcileDuplicate (processed before, by a callback or another replica) or ReconcileRetry
// with the error; the first two mean the task's outcome is handled.
func (h *CallbackHandler) deliverPolled(ctx context.Context, r *Result, aleph bool) (ReconcileOutcome, error) {
	id := r.TaskID
	cctx, cancel := context.WithTimeout(ctx, h.resultTimeout)
	defer cancel()
	st, token, err := h.dedupe.Claim(cctx, id, h.resultTimeout+claimMargin)
	switch {
	case err != nil:
		return ReconcileRetry, fmt.Errorf("dedupe claim: %w", err)
	case st == ClaimDone:
		return ReconcileDuplicate, nil
	case st == ClaimBusy:
		return ReconcileRetry, errClaimBusy
	case st != ClaimAcquired:
		return ReconcileRetry, fmt.Errorf("dedupe claim: unknown status %d", st)
	}
	derr := h.deliver(cctx, r, aleph, true)
	sctx, scancel := h.storeContext(context.WithoutCancel(ctx))
	defer scancel()
	h.endClaim(sctx, "reconcile", id, token, derr == nil)
	if derr != nil {
		return ReconcileRetry, derr
	}
	return ReconcileDelivered, nil
}

// reconciler is the state of one Reconcile call. Its fields below the line are owned by the
// goroutine running run; workers only read a task's entry and write its poll state.
type reconciler struct {
	h        *CallbackHandler
	c        *Client
	j        Journal
	lj       LeasingJournal // nil when j does not lease
	owner    string         // lease owner token
	interval time.Duration
	// maxLeases caps the leases held at once, so that one replica does not take every task
	// while the others idle (see maxLeases).
	maxLeases int
	workers   int

	addedMu  sync.Mutex
	addedBuf []JournalEntry
	added    chan struct{} // signalled when addedBuf has entries

	tasks    map[string]*recTask
	queue    taskQueue
	inflight int
}

// recTask is one pending entry being followed.
type recTask struct {
	e    JournalEntry
	due  time.Time
	idx  int  // index in the queue; -1 when not queued
	busy bool // a worker is polling it
	gone bool // the entry left the journal (or its lease was lost) while busy

	// Written by the worker polling it.
	failures      int
	notFoundSince time.Time // first of the "not found" answers in a row; zero after another answer
	notFound      int       // "not found" answers in a row
}

// recOutcome is what a worker reports after polling a task.
type recOutcome struct {
	t     *recTask
	done  bool      // handled or abandoned: stop following it
	next  time.Time // when to poll it again
	start time.Time
}

func (rc *reconciler) run(ctx context.Context) error {
	work := make(chan *recTask, rc.workers)
	outcomes := make(chan recOutcome, rc.workers)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range rc.workers {
		wg.Go(func() {
			for t := range work {
				outcomes <- rc.poll(wctx, t)
			}
		})
	}
	if rc.lj == nil {
		stop := rc.c.jnl.watch(rc.onAdd)
		defer stop()
	}
	defer func() {
		cancel()
		close(work)
		wg.Wait()
		rc.unleaseAll(ctx)
	}()

	period := rc.interval
	if rc.lj != nil {
		period = leaseRefreshPeriod(rc.lj.LeaseTTL(), rc.interval)
	}
	refresh := time.NewTimer(0)
	defer refresh.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		now := rc.c.now()
		for rc.inflight < rc.workers && len(rc.queue) > 0 && !rc.queue[0].due.After(now) {
			t := rc.queue.pop()
			t.busy = true
			rc.inflight++
			work <- t
		}
		if len(rc.queue) > 0 && rc.inflight < rc.workers {
			wake.Reset(rc.queue[0].due.Sub(now))
		} else {
			wake.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case o := <-outcomes:
			rc.settle(o)
		case <-refresh.C:
			rc.refresh(ctx)
			refresh.Reset(period)
		case <-rc.added:
			rc.takeAdded()
		case <-wake.C:
		}
	}
}

// onAdd is the client's notice of a new entry (journalHook.watch); it must not block.
func (rc *reconciler) onAdd(e JournalEntry) {
	rc.addedMu.Lock()
	rc.addedBuf = append(rc.addedBuf, e)
	rc.addedMu.Unlock()
	select {
	case rc.added <- struct{}{}:
	default:
	}
}

func (rc *reconciler) takeAdded() {
	rc.addedMu.Lock()
	buf := rc.addedBuf
	rc.addedBuf = nil
	rc.addedMu.Unlock()
	now := rc.c.now()
	for _, e := range buf {
		rc.follow(e, now)
	}
}

// follow starts following e, first polled at a random phase of the interval.
func (rc *reconciler) follow(e JournalEntry, now time.Time) {
	if t, ok := rc.tasks[e.TaskID]; ok {
		t.gone = false
		return
	}
	t := &recTask{e: e, due: now.Add(mrand.N(rc.interval)), idx: -1}
	rc.tasks[e.TaskID] = t
	rc.queue.push(t)
}

// drop stops following t.
func (rc *reconciler) drop(t *recTask) {
	if t.busy {
		t.gone = true
		return
	}
	if t.idx >= 0 {
		rc.queue.remove(t.idx)
	}
	delete(rc.tasks, t.e.TaskID)
}

// settle takes a worker's outcome.
func (rc *reconciler) settle(o recOutcome) {
	t := o.t
	t.busy = false
	rc.inflight--
	if o.done || t.gone {
		delete(rc.tasks, t.e.TaskID)
		return
	}
	t.due = o.next
	rc.queue.push(t)
}

// refresh brings the set of followed tasks in line with the journal: every pending entry
// (or, leasing, every entry this replica holds a lease on) and nothing else.
func (rc *reconciler) refresh(ctx context.Context) {
	if rc.lj != nil {
		rc.refreshLeases(ctx)
		return
	}
	pending, err := rc.j.Pending(ctx)
	if err != nil {
		rc.logRefresh(ctx, err)
		return
	}
	now := rc.c.now()
	seen := make(map[string]struct{}, len(pending))
	for _, e := range pending {
		seen[e.TaskID] = struct{}{}
		rc.follow(e, now)
	}
	for id, t := range rc.tasks {
		if _, ok := seen[id]; !ok {
			rc.drop(t)
		}
	}
}

// refreshLeases renews the leases held, drops the lost ones and takes free ones.
func (rc *reconciler) refreshLeases(ctx context.Context) {
	held := make([]string, 0, len(rc.tasks))
	for id, t := range rc.tasks {
		if !t.gone {
			held = append(held, id)
		}
	}
	for len(held) > 0 {
		n := min(len(held), renewBatch)
		lost, err := rc.lj.Renew(ctx, rc.owner, held[:n])
		if err != nil {
			rc.logRefresh(ctx, err)
			return
		}
		for _, id := range lost {
			if t, ok := rc.tasks[id]; ok {
				rc.drop(t)
			}
		}
		held = held[n:]
	}
	now := rc.c.now()
	for {
		want := min(rc.maxLeases-len(rc.tasks), leaseBatch)
		if want <= 0 {
			return
		}
		es, err := rc.lj.Lease(ctx, rc.owner, want)
		if err != nil {
			rc.logRefresh(ctx, err)
			return
		}
		for _, e := range es {
			rc.follow(e, now)
		}
		if len(es) < want {
			return
		}
	}
}

// maxLeases is the most leases a replica holds at once with poll interval d: its polling
// capacity over one interval (leasesPerIntervalSecond per second of d), at least 100.
func maxLeases(d time.Duration) int {
	return max(int(d.Seconds()*leasesPerIntervalSecond), leaseBatch/10)
}

// leaseRefreshPeriod is how often a leasing Reconcile renews its leases and takes free ones:
// every third of the lease TTL or of the poll interval, whichever is shorter. A replica that
// dies just after renewing leaves leases that lapse at most ttl later; a survivor takes them
// at its next refresh, at most this period after that, and polls each within an interval:
// a takeover within ttl + period + interval (60 s + 10 s + 30 s = 100 s with the defaults of
// redisstore and DefaultPollInterval), provided the survivors hold fewer leases than their cap.
func leaseRefreshPeriod(ttl, interval time.Duration) time.Duration {
	return max(min(ttl, interval)/3, time.Millisecond)
}

// unleaseAll hands the leases held back when Reconcile returns, so that another replica
// takes the tasks at once instead of after the lease TTL.
func (rc *reconciler) unleaseAll(ctx context.Context) {
	if rc.lj == nil || len(rc.tasks) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), journalOpTimeout)
	defer cancel()
	ids := make([]string, 0, len(rc.tasks))
	for id := range rc.tasks {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		n := min(len(ids), renewBatch)
		if err := rc.lj.Unlease(ctx, rc.owner, ids[:n]); err != nil {
			rc.c.logger.LogAttrs(ctx, slog.LevelWarn, "runway: reconcile could not hand its leases back; they lapse after the lease TTL",
				slog.String("error", err.Error()))
			return
		}
		ids = ids[n:]
	}
}

func (rc *reconciler) logRefresh(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	rc.c.logger.LogAttrs(ctx, slog.LevelWarn, "runway: reconcile could not read the journal; retrying next interval",
		slog.String("error", err.Error()))
}

// poll runs on a worker: it polls t once and delivers a terminal outcome. The visit is
// reported to the handler's observer.
func (rc *reconciler) poll(ctx context.Context, t *recTask) recOutcome {
	start := rc.c.now()
	o := recOutcome{t: t, start: start, next: start.Add(rc.nextInterval())}
	e := t.e
	if ctx.Err() != nil {
		return o
	}
	out, delivered, err := rc.visit(ctx, t, &o)
	rc.h.obs.reconciled(ctx, e, out, err, delivered, start)
	return o
}

// visit does poll's work on o and says what became of the task: its outcome, the result
// when one was delivered, and the error that made it a retry or an abandonment.
func (rc *reconciler) visit(ctx context.Context, t *recTask, o *recOutcome) (ReconcileOutcome, *Result, error) {
	e := t.e
	if age := o.start.Sub(e.SubmittedAt); !e.SubmittedAt.IsZero() && age > TaskRetention {
		err := fmt.Errorf("%w: submitted %s ago, beyond Kie's %s retention", ErrAbandoned, age.Round(time.Hour), TaskRetention)
		rc.abandon(ctx, e, err)
		o.done = true
		return ReconcileAbandoned, nil, err
	}
	task, err := rc.c.getTask(ctx, e.TaskID, e.Aleph, 0)
	if err != nil {
		*o = rc.pollFailed(ctx, t, *o, err)
		if o.done {
			return ReconcileAbandoned, nil, err
		}
		return ReconcileRetry, nil, err
	}
	t.failures, t.notFoundSince, t.notFound = 0, time.Time{}, 0
	if !task.State.Known() {
		rc.c.logger.LogAttrs(ctx, slog.LevelWarn, "runway: reconcile saw an unknown task state; polling again next interval",
			slog.String("task_id", e.TaskID), slog.String("status", printable(string(task.State), maxStateInError)))
		return ReconcilePending, nil, nil
	}
	if !task.State.Terminal() {
		return ReconcilePending, nil, nil
	}
	r := task.Result()
	r.TaskID = e.TaskID
	r.Meta = cloneMeta(e.Meta)
	out, err := rc.h.deliverPolled(ctx, r, e.Aleph)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, errClaimBusy) {
			rc.c.logger.LogAttrs(ctx, slog.LevelError, "runway: reconcile delivery failed; retrying next interval",
				slog.String("task_id", e.TaskID), slog.String("error", err.Error()))
		}
		return out, nil, err
	}
	rc.c.jnl.remove(ctx, e.TaskID)
	o.done = true
	if out == ReconcileDelivered {
		return out, r, nil
	}
	return out, nil, nil
}

// pollFailed decides what a failed poll means for t: a later poll, backed off for a
// transient error, or abandonment for a task the API no longer knows.
func (rc *reconciler) pollFailed(ctx context.Context, t *recTask, o recOutcome, err error) recOutcome {
	if ctx.Err() != nil {
		return o
	}
	id := t.e.TaskID
	if errors.Is(err, ErrNotFound) {
		// Gone only if the API has not known it for reconcileNotFoundAnswers answers in a row
		// spanning reconcileNotFoundGrace since the first of them, and the task was submitted
		// longer ago than that (a task created moments ago may not be visible yet): neither
		// one stray answer nor an outage of the API ends a paid task.
		if t.notFoundSince.IsZero() {
			t.notFoundSince = o.start
		}
		t.notFound++
		if t.notFound >= reconcileNotFoundAnswers && o.start.Sub(t.e.SubmittedAt) >= reconcileNotFoundGrace &&
			o.start.Sub(t.notFoundSince) >= reconcileNotFoundGrace {
			rc.abandon(ctx, t.e, fmt.Errorf("%w: %w", ErrAbandoned, err))
			o.done = true
			return o
		}
		return o
	}
	t.failures++
	retryAfter := pollRetryAfter(err)
	level := slog.LevelDebug
	if ctx.Err() != nil || decide(kindPoll, answerOf(err), true) != verdictRetry {
		// 401, 402, 422...: nothing a retry soon will fix, but the task is still paid for
		// and pending: keep it, back off, and say so loudly.
		level = slog.LevelError
	}
	ceil := max(maxPollBackoffFactor*rc.interval, retryAfter)
	delay := max(backoff(rc.interval, ceil, t.failures, retryAfter), rc.interval)
	o.next = o.start.Add(delay)
	rc.c.logger.LogAttrs(ctx, level, "runway: reconcile poll failed; backing off",
		slog.String("task_id", id), slog.Int("attempt", t.failures), slog.Duration("wait", delay),
		slog.String("reason", retryReason(err)))
	return o
}

// nextInterval is the wait before a task's next poll: the interval plus up to a tenth of it,
// never less, so that a task is polled at most once per interval while the phases keep
// drifting apart.
func (rc *reconciler) nextInterval() time.Duration {
	return rc.interval + mrand.N(rc.interval/10+1)
}

// abandon reports a task Reconcile gives up on and removes it from the journal.
func (rc *reconciler) abandon(ctx context.Context, e JournalEntry, err error) {
	rc.c.logger.LogAttrs(ctx, slog.LevelError, "runway: reconcile abandoned a journaled task; removing it",
		slog.String("task_id", e.TaskID), slog.String("error", err.Error()))
	if fn := rc.h.abandoned; fn != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					rc.c.logger.LogAttrs(ctx, slog.LevelError, "runway: WithAbandoned function panicked",
						slog.String("task_id", e.TaskID), slog.String("error", printable(fmt.Sprint(p), 256)))
				}
			}()
			fn(ctx, e, err)
		}()
	}
	rc.c.jnl.remove(ctx, e.TaskID)
}

// taskQueue is a min-heap of tasks by due time, kept with container/heap; each task knows
// its index so that it can be taken out from the middle.
type taskQueue []*recTask

func (q taskQueue) Len() int           { return len(q) }
func (q taskQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }

func (q taskQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}

// Push and Pop implement heap.Interface; use push, pop and remove.
func (q *taskQueue) Push(x any) {
	t := x.(*recTask)
	t.idx = len(*q)
	*q = append(*q, t)
}

func (q *taskQueue) Pop() any {
	s := *q
	t := s[len(s)-1]
	s[len(s)-1] = nil
	*q = s[:len(s)-1]
	t.idx = -1
	return t
}

func (q *taskQueue) push(t *recTask) { heap.Push(q, t) }

func (q *taskQueue) pop() *recTask { return heap.Pop(q).(*recTask) }

func (q *taskQueue) remove(i int) *recTask { return heap.Remove(q, i).(*recTask) }

// randomToken returns 128 random bits in hex: a lease owner token.
func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
