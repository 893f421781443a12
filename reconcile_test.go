package runway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// memJournal is an in-memory Journal and JournalReader for tests.
type memJournal struct {
	mu      sync.Mutex
	entries map[string]JournalEntry
	adds    int
	addHook func(e JournalEntry) error // runs before an Add takes effect
}

func newMemJournal() *memJournal { return &memJournal{entries: make(map[string]JournalEntry)} }

func (m *memJournal) Add(_ context.Context, e JournalEntry) error {
	m.mu.Lock()
	hook := m.addHook
	m.mu.Unlock()
	if hook != nil {
		if err := hook(e); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.adds++
	m.entries[e.TaskID] = e
	return nil
}

func (m *memJournal) Remove(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, id)
	return nil
}

func (m *memJournal) Pending(context.Context) ([]JournalEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]JournalEntry, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e)
	}
	return out, nil
}

func (m *memJournal) Entry(_ context.Context, id string) (*JournalEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	if !ok {
		return nil, nil
	}
	return &e, nil
}

func (m *memJournal) has(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.entries[id]
	return ok
}

func (m *memJournal) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// newJournalClient returns an empty in-memory journal and a client on f that journals into
// it; the client is closed when the test (or its synctest bubble) ends.
func newJournalClient(t *testing.T, f *pollAPI, opts ...Option) (*memJournal, *Client) {
	t.Helper()
	j := newMemJournal()
	c := newPollClient(t, f, append([]Option{WithJournal(j)}, opts...)...)
	t.Cleanup(func() { _ = c.Close() })
	return j, c
}

// journalRequest is a valid submission carrying meta.
func journalRequest(meta map[string]string) GenerateRequest {
	return GenerateRequest{Prompt: "a cat", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9,
		CallBackURL: "https://example.test/cb", Meta: meta}
}

// pollSubmitID is the id pollAPI gives every submission.
const pollSubmitID = "aleph-1"

// delivered collects what a result func received.
type delivered struct {
	mu    sync.Mutex
	got   []*Result
	fail  int // fail this many first calls
	calls chan *Result
}

func newDelivered() *delivered { return &delivered{calls: make(chan *Result, 100)} }

func (d *delivered) fn(_ context.Context, r *Result) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cp := *r
	d.got = append(d.got, &cp)
	d.calls <- &cp
	if d.fail > 0 {
		d.fail--
		return errors.New("database down")
	}
	return nil
}

func (d *delivered) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

// startReconcile runs h.Reconcile until the returned stop is called; stop checks that it
// returned ctx's error.
func startReconcile(t *testing.T, h *CallbackHandler, opts ...WaitOption) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Reconcile(ctx, opts...) }()
	return func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}
}

// TestReconcileAfterRestart: a task is submitted and journaled, everything is closed, the task
// finishes while nothing runs; a new client on the same journal file reconciles it: the
// result func gets it once, from a poll, with its Meta, and the entry is gone. A late
// callback afterwards is a duplicate: 200 and no second call.
func TestReconcileAfterRestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "journal")
		f := newPollAPI(t).script(pollSubmitID, pollStateReply(pollSubmitID, StateGenerating))

		j1, err := NewFileJournal(path)
		require.NoError(t, err)
		c1 := newPollClient(t, f, WithJournal(j1))
		id, err := c1.Generate(ctx, journalRequest(map[string]string{"order": "42"}))
		require.NoError(t, err)
		require.Equal(t, pollSubmitID, id)
		require.NoError(t, c1.Close())
		require.NoError(t, j1.Close())

		time.Sleep(10 * time.Minute) // the task finishes while nothing runs
		f.script(pollSubmitID, pollSuccessReply(pollSubmitID))

		j2, err := NewFileJournal(path)
		require.NoError(t, err)
		defer j2.Close()
		c2 := newPollClient(t, f, WithJournal(j2))
		defer c2.Close()
		d := newDelivered()
		h := c2.CallbackHandler(WithResultFunc(d.fn))
		stop := startReconcile(t, h, WithPollInterval(30*time.Second))
		r := <-d.calls
		synctest.Wait()
		require.Equal(t, id, r.TaskID)
		require.Equal(t, SourcePoll, r.Source)
		require.Equal(t, map[string]string{"order": "42"}, r.Meta)
		require.NoError(t, r.Err())
		require.Empty(t, pendingIDs(t, j2), "delivered, so removed")

		resp := serve(h, newCallbackRequest(runwayBody(id, 200, "success"), nil))
		require.Equal(t, http.StatusOK, resp.Code)
		synctest.Wait()
		require.Equal(t, 1, d.count(), "the late callback is a duplicate")
		stop()
	})
}

// TestCallbackRemovesJournalEntry: a callback processed by the client's handler carries the
// journaled Meta and removes the entry.
func TestCallbackRemovesJournalEntry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		j, c := newJournalClient(t, newPollAPI(t))
		id, err := c.Generate(context.Background(), journalRequest(map[string]string{"order": "7"}))
		require.NoError(t, err)
		require.True(t, j.has(id))
		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn))
		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody(id, 200, "success"), nil)).Code)
		require.Equal(t, map[string]string{"order": "7"}, (<-d.calls).Meta)
		require.False(t, j.has(id))
	})
}

// TestCallbackFuncErrorKeepsJournalEntry: a result func that fails leaves the entry.
func TestCallbackFuncErrorKeepsJournalEntry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		j, c := newJournalClient(t, newPollAPI(t))
		id, err := c.Generate(context.Background(), journalRequest(nil))
		require.NoError(t, err)
		d := newDelivered()
		d.fail = 1
		h := c.CallbackHandler(WithResultFunc(d.fn))
		require.Equal(t, http.StatusInternalServerError, serve(h, newCallbackRequest(runwayBody(id, 200, "success"), nil)).Code)
		require.True(t, j.has(id))
		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody(id, 200, "success"), nil)).Code)
		require.False(t, j.has(id))
	})
}

// TestWaitForResultRemovesJournalEntry: the terminal result WaitForResult returns carries the
// Meta and removes the entry; a wait that times out leaves it.
func TestWaitForResultRemovesJournalEntry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newPollAPI(t).script(pollSubmitID, pollStateReply(pollSubmitID, StateGenerating))
		j, c := newJournalClient(t, f)
		id, err := c.Generate(ctx, journalRequest(map[string]string{"order": "9"}))
		require.NoError(t, err)
		_, err = c.WaitForResult(ctx, id, WithWaitTimeout(time.Minute))
		require.ErrorIs(t, err, ErrWaitTimeout)
		require.True(t, j.has(id), "no outcome yet")

		f.script(pollSubmitID, pollFailReply(pollSubmitID, "Your prompt was flagged as inappropriate content"))
		r, err := c.WaitForResult(ctx, id)
		require.ErrorIs(t, err, ErrModeration)
		require.Equal(t, map[string]string{"order": "9"}, r.Meta)
		require.False(t, j.has(id))
	})
}

// TestReconcileFailedTaskAndFuncError: a failed task is delivered classified; a result func
// error keeps the entry, and the next interval's delivery (not earlier) succeeds and removes it.
func TestReconcileFailedTaskAndFuncError(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		f := newPollAPI(t).script(pollSubmitID, pollFailReply(pollSubmitID, "Your prompt was flagged as inappropriate content"))
		j, c := newJournalClient(t, f)
		id, err := c.Generate(context.Background(), journalRequest(map[string]string{"k": "v"}))
		require.NoError(t, err)
		d := newDelivered()
		d.fail = 1
		h := c.CallbackHandler(WithResultFunc(d.fn))
		stop := startReconcile(t, h, WithPollInterval(time.Minute))
		first := <-d.calls
		require.ErrorIs(t, first.Err(), ErrModeration)
		synctest.Wait()
		require.True(t, j.has(id), "the func failed: the entry stays")
		second := <-d.calls
		synctest.Wait()
		require.ErrorIs(t, second.Err(), ErrModeration)
		require.Equal(t, map[string]string{"k": "v"}, second.Meta)
		require.False(t, j.has(id))
		times := f.getTimes(id)
		require.Len(t, times, 2)
		require.GreaterOrEqual(t, times[1].Sub(times[0]), time.Minute, "at most one poll per interval")
		stop()
	})
}

// TestReconcileAbandons: a task the API does not know for longer than the grace (30 minutes
// of answers), and a task older than the retention, are reported through WithAbandoned and removed; a task still
// running stays, also one without a submission time.
func TestReconcileAbandons(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		now := time.Now()
		j := newMemJournal()
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "gone", SubmittedAt: now.Add(-time.Hour)}))
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "old", SubmittedAt: now.Add(-TaskRetention - time.Hour)}))
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "running", SubmittedAt: now}))
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "undated"}))
		f := newPollAPI(t).
			script("gone", pollEnvelopeReply(http.StatusOK, 404, "task not found")).
			script("running", pollStateReply("running", StateGenerating)).
			script("undated", pollStateReply("undated", StateGenerating))
		c := newPollClient(t, f, WithJournal(j))
		defer c.Close()
		var mu sync.Mutex
		abandoned := map[string]error{}
		h := c.CallbackHandler(WithResultFunc(newDelivered().fn), WithAbandoned(func(_ context.Context, e JournalEntry, err error) {
			mu.Lock()
			abandoned[e.TaskID] = err
			mu.Unlock()
		}))
		stop := startReconcile(t, h, WithPollInterval(30*time.Second))
		time.Sleep(29 * time.Minute)
		synctest.Wait()
		mu.Lock()
		require.Len(t, abandoned, 1, "29 minutes of not found are within the grace")
		require.Contains(t, abandoned, "old")
		mu.Unlock()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		stop()
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, abandoned, 2)
		require.ErrorIs(t, abandoned["gone"], ErrAbandoned)
		require.ErrorIs(t, abandoned["gone"], ErrNotFound)
		require.ErrorIs(t, abandoned["old"], ErrAbandoned)
		require.Empty(t, f.getTimes("old"), "too old to ask")
		require.GreaterOrEqual(t, len(f.getTimes("gone")), 2, "one 404 is not enough")
		require.Equal(t, 2, j.len())
		require.True(t, j.has("running"))
		require.True(t, j.has("undated"), "no submission time: never too old")
	})
}

// TestReconcileHonoursRetryAfter: a 429 with Retry-After holds that task's next poll back for
// at least that long.
func TestReconcileHonoursRetryAfter(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		j := newMemJournal()
		require.NoError(t, j.Add(context.Background(), JournalEntry{TaskID: "t1", SubmittedAt: time.Now()}))
		f := newPollAPI(t).script("t1",
			pollReply{status: http.StatusTooManyRequests, body: `{"code":429,"msg":"slow down"}`, header: map[string]string{"Retry-After": "300"}},
			pollStateReply("t1", StateGenerating))
		c := newPollClient(t, f, WithJournal(j))
		defer c.Close()
		stop := startReconcile(t, c.CallbackHandler(WithResultFunc(newDelivered().fn)), WithPollInterval(30*time.Second))
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		stop()
		times := f.getTimes("t1")
		require.GreaterOrEqual(t, len(times), 2)
		require.GreaterOrEqual(t, times[1].Sub(times[0]), 300*time.Second)
	})
}

// TestReconcilePicksUpNewEntries: a submission made while Reconcile runs is followed without
// waiting for the next re-read of the journal.
func TestReconcilePicksUpNewEntries(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		f := newPollAPI(t).script(pollSubmitID, pollSuccessReply(pollSubmitID))
		j, c := newJournalClient(t, f)
		d := newDelivered()
		stop := startReconcile(t, c.CallbackHandler(WithResultFunc(d.fn)), WithPollInterval(10*time.Minute))
		synctest.Wait() // Reconcile read the (empty) journal and sleeps
		start := time.Now()
		_, err := c.Generate(context.Background(), journalRequest(nil))
		require.NoError(t, err)
		<-d.calls
		require.Less(t, time.Since(start), 10*time.Minute, "polled within the first interval")
		synctest.Wait()
		require.Zero(t, j.len())
		stop()
	})
}

// TestReconcileNeedsClientAndJournal: Reconcile refuses at once what cannot work.
func TestReconcileNeedsClientAndJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	err := NewCallbackHandler(WithResultFunc(newDelivered().fn)).Reconcile(ctx)
	require.ErrorContains(t, err, "Client.CallbackHandler")
	c, err := NewClient("test-key")
	require.NoError(t, err)
	require.ErrorContains(t, c.CallbackHandler().Reconcile(ctx), "WithJournal")
	cj, err := NewClient("test-key", WithJournal(newMemJournal()))
	require.NoError(t, err)
	require.Error(t, cj.CallbackHandler().Reconcile(ctx, WithPollInterval(-time.Second)))
	_, err = NewClient("test-key", WithJournal(nil))
	require.ErrorContains(t, err, "WithJournal")
}

// TestSubmitJournalFailure: when the journal cannot record a created task, the submission
// returns the id with an error matching ErrJournal, and sends nothing again.
func TestSubmitJournalFailure(t *testing.T) {
	t.Parallel()
	j := newMemJournal()
	j.addHook = func(JournalEntry) error { return errors.New("disk full") }
	f := newPollAPI(t)
	c := newPollClient(t, f, WithJournal(j))
	defer c.Close()
	id, err := c.Generate(context.Background(), journalRequest(nil))
	require.ErrorIs(t, err, ErrJournal)
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, pollSubmitID, id)
	require.Equal(t, []string{"POST /api/v1/runway/generate"}, f.paths())
}

// TestCallbackBeforeJournalAdd: the callback beats the submission's response (and so its
// journal Add): the entry added afterwards is removed at once, not left to linger, and the
// task is not delivered again.
func TestCallbackBeforeJournalAdd(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		j, c := newJournalClient(t, newPollAPI(t))
		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn))
		j.addHook = func(e JournalEntry) error {
			resp := serve(h, newCallbackRequest(runwayBody(e.TaskID, 200, "success"), nil))
			require.Equal(t, http.StatusOK, resp.Code)
			return nil
		}
		id, err := c.Generate(context.Background(), journalRequest(map[string]string{"a": "b"}))
		require.NoError(t, err)
		require.Equal(t, 1, d.count())
		require.False(t, j.has(id), "the late Add was undone")
	})
}

// TestEarlyCallbackWaitsForJournal: a callback that arrives while the submission of its task
// is still being journaled waits for the entry, so it gets the Meta and removes the entry.
func TestEarlyCallbackWaitsForJournal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		j, c := newJournalClient(t, newPollAPI(t))
		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn))
		codes := make(chan int, 1)
		j.addHook = func(e JournalEntry) error {
			go func() { codes <- serve(h, newCallbackRequest(runwayBody(e.TaskID, 200, "success"), nil)).Code }()
			synctest.Wait()
			require.Zero(t, d.count(), "the callback waits for the journal entry")
			return nil
		}
		id, err := c.Generate(context.Background(), journalRequest(map[string]string{"order": "1"}))
		require.NoError(t, err)
		require.Equal(t, map[string]string{"order": "1"}, (<-d.calls).Meta)
		require.Equal(t, http.StatusOK, <-codes)
		require.False(t, j.has(id))
	})
}

// wireCapture records request bodies.
type wireCapture struct {
	mu     sync.Mutex
	bodies []string
}

func (w *wireCapture) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	w.mu.Lock()
	w.bodies = append(w.bodies, string(b))
	w.mu.Unlock()
	body := fmt.Sprintf(`{"code":200,"msg":"success","data":{"taskId":"t%d"}}`, len(w.bodies))
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: req}, nil
}

// TestMetaNeverSent: Meta on each request type stays out of the wire JSON and is journaled.
func TestMetaNeverSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := &wireCapture{}
	j := newMemJournal()
	c := newTestClient(t, WithBaseURL("https://api.kie.test"), WithHTTPClient(&http.Client{Transport: w}), WithJournal(j))
	meta := map[string]string{"secret-order": "order-123"}
	_, err := c.Generate(ctx, journalRequest(meta))
	require.NoError(t, err)
	_, err = c.Extend(ctx, ExtendRequest{TaskID: "t0", Prompt: "more", Quality: Quality720p, Meta: meta})
	require.NoError(t, err)
	id, err := c.GenerateAleph(ctx, AlephRequest{Prompt: "p", VideoURL: "https://example.test/v.mp4", Meta: meta})
	require.NoError(t, err)
	require.Len(t, w.bodies, 3)
	for _, b := range w.bodies {
		assert.NotContains(t, b, "order-123")
		assert.NotContains(t, b, "secret-order")
		assert.NotContains(t, b, "eta")
	}
	es, _ := j.Pending(ctx)
	require.Len(t, es, 3)
	for _, e := range es {
		require.Equal(t, meta, e.Meta)
		require.Equal(t, e.TaskID == id, e.Aleph)
	}
	meta["secret-order"] = "changed"
	e, _ := j.Entry(ctx, id)
	require.Equal(t, "order-123", e.Meta["secret-order"], "the journal keeps its own copy")
}

// TestReconcileSpreadsPolls: 1 000 pending tasks are polled at phases spread over the
// interval, not in bursts (the busiest tenth of an interval within 1.5x of the average), and
// no task is polled twice within an interval.
func TestReconcileSpreadsPolls(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		const n, interval = 1000, 30 * time.Second
		j := newMemJournal()
		for i := range n {
			require.NoError(t, j.Add(context.Background(), JournalEntry{TaskID: fmt.Sprintf("t%04d", i), SubmittedAt: time.Now()}))
		}
		f := newPollAPI(t).script("", pollReply{body: `{"code":200,"msg":"success","data":{"state":"generating"}}`})
		c := newPollClient(t, f, WithJournal(j))
		defer c.Close()
		start := time.Now()
		stop := startReconcile(t, c.CallbackHandler(WithResultFunc(newDelivered().fn)), WithPollInterval(interval))
		time.Sleep(4 * interval)
		synctest.Wait()
		stop()

		windows := make([]int, 40)
		for i := range n {
			times := f.getTimes(fmt.Sprintf("t%04d", i))
			require.GreaterOrEqual(t, len(times), 3, "task %d", i)
			for k, at := range times {
				if k > 0 {
					require.GreaterOrEqual(t, at.Sub(times[k-1]), interval, "task %d polled twice within an interval", i)
				}
				if w := int(at.Sub(start) / (interval / 10)); w < len(windows) {
					windows[w]++
				}
			}
		}
		total, peak := 0, 0
		for _, v := range windows[10:] { // after the first interval's initial spread
			total += v
			peak = max(peak, v)
		}
		avg := float64(total) / 30
		require.LessOrEqual(t, float64(peak)/avg, 1.5, "peak %d polls in a tenth of an interval, average %.0f", peak, avg)
	})
}

// TestWaiterKeepsEntryWhenCallbackFuncFails: a WaitForResult woken by a callback whose result
// func then fails returns the result, but the entry stays (Kie retries the callback, and
// Reconcile or a restart still has the task); the retried callback's success removes it.
func TestWaiterKeepsEntryWhenCallbackFuncFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newPollAPI(t).script(pollSubmitID, pollStateReply(pollSubmitID, StateGenerating))
		j, c := newJournalClient(t, f)
		id, err := c.Generate(ctx, journalRequest(map[string]string{"order": "5"}))
		require.NoError(t, err)
		d := newDelivered()
		d.fail = 1
		h := c.CallbackHandler(WithResultFunc(d.fn))
		type waited struct {
			r   *Result
			err error
		}
		done := make(chan waited, 1)
		go func() {
			r, err := c.WaitForResult(ctx, id, WithPollInterval(time.Hour))
			done <- waited{r, err}
		}()
		synctest.Wait() // the waiter polled once and sleeps
		require.Equal(t, http.StatusInternalServerError, serve(h, newCallbackRequest(runwayBody(id, 200, "success"), nil)).Code)
		w := <-done
		require.NoError(t, w.err)
		require.Equal(t, SourceCallback, w.r.Source)
		require.Equal(t, map[string]string{"order": "5"}, w.r.Meta)
		synctest.Wait()
		require.True(t, j.has(id), "the result func failed: the entry stays")

		// A later WaitForResult finds the result on the bus; it leaves the entry too.
		r, err := c.WaitForResult(ctx, id)
		require.NoError(t, err)
		require.Equal(t, SourceCallback, r.Source)
		require.True(t, j.has(id))

		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody(id, 200, "success"), nil)).Code)
		require.False(t, j.has(id), "the retried callback succeeded: removed")
	})
}

// TestReconcileOutlivesNotFoundOutage: an outage during which the API answers "not found" for
// 20 minutes abandons nothing, and the task is delivered once the API knows it again; and
// 30 minutes of "not found" are not enough with fewer than five answers in a row.
func TestReconcileOutlivesNotFoundOutage(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		now := time.Now()
		j := newMemJournal()
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t1", SubmittedAt: now.Add(-time.Hour), Meta: map[string]string{"o": "1"}}))
		notFound := pollEnvelopeReply(http.StatusOK, 404, "task not found")
		f := newPollAPI(t).script("t1", notFound)
		c := newPollClient(t, f, WithJournal(j))
		defer c.Close()
		var mu sync.Mutex
		var abandoned []time.Time
		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn), WithAbandoned(func(context.Context, JournalEntry, error) {
			mu.Lock()
			abandoned = append(abandoned, time.Now())
			mu.Unlock()
		}))
		stop := startReconcile(t, h, WithPollInterval(30*time.Second))
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		require.GreaterOrEqual(t, len(f.getTimes("t1")), 30)
		f.script("t1", pollSuccessReply("t1"))
		r := <-d.calls
		synctest.Wait()
		require.Equal(t, map[string]string{"o": "1"}, r.Meta)
		require.False(t, j.has("t1"))
		stop()
		mu.Lock()
		require.Empty(t, abandoned, "an outage does not abandon")
		mu.Unlock()

		// Polled every 20 minutes: 30 minutes pass after the first "not found" with only
		// two more answers; the fifth one in a row, 80 minutes after the first, abandons.
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t2", SubmittedAt: time.Now().Add(-time.Hour)}))
		f.script("t2", notFound)
		stop = startReconcile(t, h, WithPollInterval(20*time.Minute))
		time.Sleep(75 * time.Minute)
		synctest.Wait()
		require.True(t, j.has("t2"), "four answers are not enough")
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		stop()
		require.False(t, j.has("t2"))
		polls := f.getTimes("t2")
		require.Len(t, polls, 5)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, abandoned, 1)
		require.GreaterOrEqual(t, abandoned[0].Sub(polls[0]), 80*time.Minute)
	})
}

// leasingMemJournal is a memJournal that also leases (every entry, to anyone).
type leasingMemJournal struct{ *memJournal }

func (l leasingMemJournal) Lease(ctx context.Context, _ string, max int) ([]JournalEntry, error) {
	es, err := l.Pending(ctx)
	return es[:min(len(es), max)], err
}
func (leasingMemJournal) Renew(context.Context, string, []string) ([]string, error) { return nil, nil }
func (leasingMemJournal) Unlease(context.Context, string, []string) error           { return nil }
func (leasingMemJournal) LeaseTTL() time.Duration                                   { return time.Minute }

// TestReconcileWarnsLeasingWithMemoryDeduper: a leasing (shared) journal with the in-memory
// deduper of one replica can deliver a task twice; Reconcile says so at Error level when it
// starts, and not when the handler has a deduper of its own or the journal is not shared.
func TestReconcileWarnsLeasingWithMemoryDeduper(t *testing.T) {
	defer goleak.VerifyNone(t)
	const msg = "dedupes in memory"
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			j       Journal
			deduper Deduper
			warn    bool
		}{
			{"leasing, memory deduper", leasingMemJournal{newMemJournal()}, nil, true},
			{"leasing, shared deduper", leasingMemJournal{newMemJournal()}, newMemoryDeduperForTest(), false},
			{"not leasing", newMemJournal(), nil, false},
		} {
			var logs logBuffer
			c := newPollClient(t, newPollAPI(t), WithJournal(tc.j), WithLogger(logs.logger()))
			opts := []CallbackOption{WithResultFunc(newDelivered().fn)}
			if tc.deduper != nil {
				opts = append(opts, WithDeduper(tc.deduper))
			}
			h := c.CallbackHandler(opts...)
			stop := startReconcile(t, h)
			synctest.Wait()
			stop()
			require.NoError(t, c.Close())
			if tc.warn {
				require.Contains(t, logs.String(), "level=ERROR msg=\"runway: reconcile shares a leasing journal", tc.name)
			} else {
				require.NotContains(t, logs.String(), msg, tc.name)
			}
		}
	})
}

// sharedDeduper stands for a deduper shared between replicas (not the SDK's in-memory one).
type sharedDeduper struct{ Deduper }

func newMemoryDeduperForTest() Deduper {
	return sharedDeduper{newMemoryDeduper(DefaultDedupeTTL, 100, time.Now)}
}

// TestCallbackWaitsForAnotherReplicasJournalAdd: a callback landing on this replica while
// another replica's submission of the task is still being journaled (no submission of this
// client in progress) reads the shared journal again, so it gets the Meta once the entry
// appears, and removes the entry once the result func succeeded.
func TestCallbackWaitsForAnotherReplicasJournalAdd(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		j, c := newJournalClient(t, newPollAPI(t))
		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn))
		codes := make(chan int, 1)
		go func() { codes <- serve(h, newCallbackRequest(runwayBody("t-other", 200, "success"), nil)).Code }()
		time.Sleep(300 * time.Millisecond) // the other replica's Add lands late
		synctest.Wait()
		require.Zero(t, d.count(), "the callback waits for the entry")
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t-other", Meta: map[string]string{"order": "77"}}))
		r := <-d.calls
		require.Equal(t, map[string]string{"order": "77"}, r.Meta)
		require.Equal(t, http.StatusOK, <-codes)
		require.False(t, j.has("t-other"))
	})
}

// TestCallbackMetaWaitIsBounded: a callback for a task that never appears in the journal is
// processed without Meta after maxMetaWait, and one for a task this client removed itself
// does not wait at all.
func TestCallbackMetaWaitIsBounded(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, c := newJournalClient(t, newPollAPI(t))
		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn), WithResultTimeout(10*time.Second))
		start := time.Now()
		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody("t-none", 200, "success"), nil)).Code)
		require.Nil(t, (<-d.calls).Meta)
		require.Equal(t, maxMetaWait, time.Since(start))

		c.jnl.remove(context.Background(), "t-mine")
		start = time.Now()
		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody("t-mine", 200, "success"), nil)).Code)
		require.Nil(t, (<-d.calls).Meta)
		require.Zero(t, time.Since(start), "removed here: no wait")
	})
}

// TestCallbackMetaWaitLeavesTheBudget: with a short result budget, the wait for a missing
// journal entry takes at most a quarter of it, so the result func still runs in time.
func TestCallbackMetaWaitLeavesTheBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, c := newJournalClient(t, newPollAPI(t))
		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn), WithResultTimeout(time.Second))
		start := time.Now()
		require.Equal(t, http.StatusOK, serve(h, newCallbackRequest(runwayBody("t-none", 200, "success"), nil)).Code)
		<-d.calls
		require.Equal(t, 250*time.Millisecond, time.Since(start))
	})
}
