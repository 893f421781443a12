package runway

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// journalEvents records the journal, reconcile and result events of an Observer.
type journalEvents struct {
	mu        sync.Mutex
	journal   []JournalEvent
	reconcile []ReconcileEvent
	results   []ResultEvent
}

func (l *journalEvents) observer() Observer {
	return Observer{
		OnJournal:   func(e JournalEvent) { l.mu.Lock(); l.journal = append(l.journal, e); l.mu.Unlock() },
		OnReconcile: func(e ReconcileEvent) { l.mu.Lock(); l.reconcile = append(l.reconcile, e); l.mu.Unlock() },
		OnResult:    func(e ResultEvent) { l.mu.Lock(); l.results = append(l.results, e); l.mu.Unlock() },
	}
}

// outcomes returns the reconcile outcomes seen for taskID, in order.
func (l *journalEvents) outcomes(taskID string) []ReconcileOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ReconcileOutcome
	for _, e := range l.reconcile {
		if e.TaskID == taskID {
			out = append(out, e.Outcome)
		}
	}
	return out
}

// writes returns the journal writes seen, as "op id" strings (" failed" added when the
// write failed), in order.
func (l *journalEvents) writes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.journal {
		w := string(e.Op) + " " + e.TaskID
		if e.Err != nil {
			w += " failed"
		}
		out = append(out, w)
	}
	return out
}

// TestReconcileObserverEvents: every journal write and every visit of Reconcile is reported
// to the client's observer, with the outcome a dashboard needs (pending, delivered, duplicate,
// retry, abandoned), and a result Reconcile delivers carries the time since its submission,
// known from the journal even across a restart.
func TestReconcileObserverEvents(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		j := newMemJournal()
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "gone", SubmittedAt: time.Now().Add(-time.Hour)}))
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "seen", SubmittedAt: time.Now().Add(-time.Hour)}))
		f := newPollAPI(t).
			script(pollSubmitID, pollStateReply(pollSubmitID, StateGenerating), pollSuccessReply(pollSubmitID)).
			script("gone", pollEnvelopeReply(http.StatusOK, 404, "task not found")).
			script("seen", pollSuccessReply("seen"))
		var ev journalEvents
		c := newPollClient(t, f, WithJournal(j), WithObserver(ev.observer()))
		defer c.Close()
		submitted := time.Now()
		id, err := c.Generate(ctx, journalRequest(nil))
		require.NoError(t, err)

		// "seen" was processed before (a callback on another replica): the deduper knows.
		dd := NewMemoryDeduper(time.Hour)
		st, token, err := dd.Claim(ctx, "seen", time.Minute)
		require.NoError(t, err)
		require.Equal(t, ClaimAcquired, st)
		require.NoError(t, dd.Done(ctx, "seen", token))

		d := newDelivered()
		h := c.CallbackHandler(WithResultFunc(d.fn), WithDeduper(dd), WithAbandoned(func(context.Context, JournalEntry, error) {}))
		stop := startReconcile(t, h, WithPollInterval(30*time.Second))
		r := <-d.calls
		delivered := time.Now()
		time.Sleep(35 * time.Minute) // past the not-found grace
		synctest.Wait()
		stop()

		require.Equal(t, id, r.TaskID)
		require.Equal(t, []ReconcileOutcome{ReconcilePending, ReconcileDelivered}, ev.outcomes(id))
		require.Equal(t, []ReconcileOutcome{ReconcileDuplicate}, ev.outcomes("seen"))
		gone := ev.outcomes("gone")
		require.GreaterOrEqual(t, len(gone), 2, "one 404 is not enough to give up")
		require.Equal(t, ReconcileAbandoned, gone[len(gone)-1])
		for _, o := range gone[:len(gone)-1] {
			require.Equal(t, ReconcileRetry, o)
		}

		ev.mu.Lock()
		for _, e := range ev.reconcile {
			switch e.TaskID {
			case "gone":
				if e.Outcome != ReconcilePending {
					require.ErrorIs(t, e.Err, ErrNotFound)
				}
				require.GreaterOrEqual(t, e.Age, time.Hour, "age from the journaled submission time")
			case id:
				require.NoError(t, e.Err)
			}
		}
		require.Len(t, ev.results, 1, "one result entered the SDK: the one Reconcile delivered")
		res := ev.results[0]
		require.Equal(t, id, res.TaskID)
		require.Equal(t, SourcePoll, res.Source)
		require.Equal(t, StateSuccess, res.State)
		require.Equal(t, delivered.Sub(submitted), res.SinceSubmit)
		ev.mu.Unlock()

		require.ElementsMatch(t, []string{"add " + id, "remove " + id, "remove seen", "remove gone"}, ev.writes())
		require.Equal(t, "add "+id, ev.writes()[0])
	})
}

// TestJournalObserverReportsErrors: a failed journal write is reported with its error.
func TestJournalObserverReportsErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := newMemJournal()
		j.addHook = func(JournalEntry) error { return context.DeadlineExceeded }
		var ev journalEvents
		c := newPollClient(t, newPollAPI(t), WithJournal(j), WithObserver(ev.observer()))
		defer c.Close()
		id, err := c.Generate(context.Background(), journalRequest(nil))
		require.ErrorIs(t, err, ErrJournal)
		ev.mu.Lock()
		defer ev.mu.Unlock()
		require.Len(t, ev.journal, 1)
		require.Equal(t, JournalAdd, ev.journal[0].Op)
		require.Equal(t, id, ev.journal[0].TaskID)
		require.ErrorIs(t, ev.journal[0].Err, context.DeadlineExceeded)
	})
}
