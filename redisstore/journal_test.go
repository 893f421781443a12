package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/stretchr/testify/require"
)

// TestJournalEntries: Add, Entry, Pending and Remove round-trip entries with their Meta.
func TestJournalEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	at := time.Unix(1769670760, 0).UTC()
	for i := range 2500 { // more than one HSCAN step
		require.NoError(t, s.Add(ctx, runway.JournalEntry{TaskID: fmt.Sprintf("t%d", i), SubmittedAt: at, Aleph: i%2 == 0,
			Meta: map[string]string{"i": fmt.Sprint(i)}}))
	}
	e, err := s.Entry(ctx, "t7")
	require.NoError(t, err)
	require.Equal(t, runway.JournalEntry{TaskID: "t7", SubmittedAt: at, Meta: map[string]string{"i": "7"}}, *e)
	require.NoError(t, s.Remove(ctx, "t7"))
	require.NoError(t, s.Remove(ctx, "t7"), "removing an absent id is a no-op")
	e, err = s.Entry(ctx, "t7")
	require.NoError(t, err)
	require.Nil(t, e)
	all, err := s.Pending(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2499)
}

// TestJournalLeases: a lease keeps an entry from other owners until it lapses or is handed
// back; renewal reports what the owner no longer holds.
func TestJournalLeases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t, WithLeaseTTL(300*time.Millisecond))
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, s.Add(ctx, runway.JournalEntry{TaskID: id}))
	}
	got, err := s.Lease(ctx, "r1", 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	rest, err := s.Lease(ctx, "r2", 10)
	require.NoError(t, err)
	require.Len(t, rest, 1, "r2 gets only the free entry")
	none, err := s.Lease(ctx, "r3", 10)
	require.NoError(t, err)
	require.Empty(t, none)

	r1 := []string{got[0].TaskID, got[1].TaskID}
	require.NoError(t, s.Remove(ctx, r1[1]))
	lost, err := s.Renew(ctx, "r1", r1)
	require.NoError(t, err)
	require.Equal(t, []string{r1[1]}, lost, "a removed entry is lost")
	lost, err = s.Renew(ctx, "r2", []string{r1[0]})
	require.NoError(t, err)
	require.Equal(t, []string{r1[0]}, lost, "not r2's lease")

	require.NoError(t, s.Unlease(ctx, "r2", []string{rest[0].TaskID}))
	back, err := s.Lease(ctx, "r3", 10)
	require.NoError(t, err)
	require.Equal(t, []runway.JournalEntry{rest[0]}, back, "handed back, so free at once")

	// r1 stops renewing: its lease lapses and r3 takes the entry.
	waitFor(t, "r1's lease to lapse", func(ctx context.Context) bool {
		es, err := s.Lease(ctx, "r3", 10)
		require.NoError(t, err)
		for _, e := range es {
			if e.TaskID == r1[0] {
				return true
			}
		}
		return false
	})
	lost, err = s.Renew(ctx, "r1", []string{r1[0]})
	require.NoError(t, err)
	require.Equal(t, []string{r1[0]}, lost)
}

// kieFake answers the details endpoint for the replicas, each under its own path prefix
// (/r0, /r1, ...), and records which replica polled which task when.
type kieFake struct {
	srv *httptest.Server

	mu       sync.Mutex
	finished bool // every task reports success
	polls    map[string][]replicaPoll
	polled   chan string // each task's first poll by a replica, as "replica task"
	seen     map[string]bool
}

type replicaPoll struct {
	replica string
	at      time.Time
}

func newKieFake(t *testing.T) *kieFake {
	f := &kieFake{polls: make(map[string][]replicaPoll), polled: make(chan string, 10000), seen: make(map[string]bool)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replica, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		id := r.URL.Query().Get("taskId")
		if path != "api/v1/runway/record-detail" || id == "" {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.polls[id] = append(f.polls[id], replicaPoll{replica, time.Now()})
		if k := replica + " " + id; !f.seen[k] {
			f.seen[k] = true
			f.polled <- k
		}
		state := "generating"
		if f.finished {
			state = "success"
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"code":200,"msg":"success","data":{"taskId":%q,"state":%q,"videoInfo":{"videoId":"v","videoUrl":"https://file.test/%s.mp4"}}}`, id, state, id)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *kieFake) finish() {
	f.mu.Lock()
	f.finished = true
	f.mu.Unlock()
}

func (f *kieFake) pollsOf(id string) []replicaPoll {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]replicaPoll(nil), f.polls[id]...)
}

// deliveries counts result func calls per task and reports each first one.
type deliveries struct {
	mu    sync.Mutex
	by    map[string][]string // task id -> replicas that ran the func
	first chan string
}

func newDeliveries() *deliveries {
	return &deliveries{by: make(map[string][]string), first: make(chan string, 10000)}
}

func (d *deliveries) fn(replica string) func(context.Context, *runway.Result) error {
	return func(_ context.Context, r *runway.Result) error {
		if r.Source != runway.SourcePoll || r.Meta["n"] == "" {
			return fmt.Errorf("unexpected result %+v", r)
		}
		d.mu.Lock()
		d.by[r.TaskID] = append(d.by[r.TaskID], replica)
		n := len(d.by[r.TaskID])
		d.mu.Unlock()
		if n == 1 {
			d.first <- r.TaskID
		}
		return nil
	}
}

// crashable is a replica's view of the Store that can be made to behave like a crashed
// process: no more renewals, and no leases handed back on the way out.
type crashable struct {
	*Store
	crashed atomic.Bool
}

func (c *crashable) Renew(ctx context.Context, owner string, ids []string) ([]string, error) {
	if c.crashed.Load() {
		return nil, errors.New("crashed")
	}
	return c.Store.Renew(ctx, owner, ids)
}

func (c *crashable) Unlease(ctx context.Context, owner string, ids []string) error {
	if c.crashed.Load() {
		return nil
	}
	return c.Store.Unlease(ctx, owner, ids)
}

// jreplica is a service replica running Reconcile on the shared journal.
type jreplica struct {
	name    string
	journal *crashable
	stop    func()
}

// startJReplica starts replica name: a client on the fake under /name, journaling to the
// Store, and Reconcile on its handler (deduping through the Store).
func startJReplica(t *testing.T, name string, store *Store, api *kieFake, d *deliveries, interval time.Duration) *jreplica {
	t.Helper()
	j := &crashable{Store: store}
	c, err := runway.NewClient("test-key", runway.WithBaseURL(api.srv.URL+"/"+name), runway.WithJournal(j))
	require.NoError(t, err)
	h := c.CallbackHandler(runway.WithDeduper(store), runway.WithResultFunc(d.fn(name)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Reconcile(ctx, runway.WithPollInterval(interval)) }()
	stopped := false
	r := &jreplica{name: name, journal: j}
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		_ = c.Close()
	}
	t.Cleanup(r.stop)
	return r
}

// addTasks journals n tasks as submitted a moment ago.
func addTasks(t *testing.T, s *Store, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("task-%03d", i)
		require.NoError(t, s.Add(context.Background(), runway.JournalEntry{TaskID: ids[i], SubmittedAt: time.Now(),
			Meta: map[string]string{"n": fmt.Sprint(i)}}))
	}
	return ids
}

// recvN waits for n values on ch, failing after a generous bound.
func recvN(t *testing.T, ch <-chan string, n int, what string) {
	t.Helper()
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	for i := range n {
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s: %d of %d", what, i, n)
		}
	}
}

// TestReconcileThreeReplicas: three replicas reconcile 300 pending tasks from one Redis with
// no callbacks at all. Each task is polled by exactly one replica, never twice within an
// interval, and delivered exactly once; the journal ends empty. The work is shared: a
// replica holds at most 100 leases per second of interval, so with a 1 s interval each of
// the three ends up with a third of the tasks, not one replica with all of them.
func TestReconcileThreeReplicas(t *testing.T) {
	t.Parallel()
	const n, interval = 300, time.Second
	store, _ := newTestStore(t, WithLeaseTTL(3*time.Second))
	ids := addTasks(t, store, n)
	api := newKieFake(t)
	d := newDeliveries()
	for i := range 3 {
		startJReplica(t, fmt.Sprintf("r%d", i), store, api, d, interval)
	}
	recvN(t, api.polled, n, "every task's first poll")
	// A second round of polls, still unfinished, before the tasks finish.
	waitFor(t, "a second poll of every task", func(context.Context) bool {
		for _, id := range ids {
			if len(api.pollsOf(id)) < 2 {
				return false
			}
		}
		return true
	})
	api.finish()
	recvN(t, d.first, n, "every delivery")
	waitFor(t, "an empty journal", func(ctx context.Context) bool {
		es, err := store.Pending(ctx)
		require.NoError(t, err)
		return len(es) == 0
	})
	for _, id := range ids {
		polls := api.pollsOf(id)
		for i, p := range polls {
			require.Equal(t, polls[0].replica, p.replica, "task %s polled by two replicas: %v", id, polls)
			if i > 0 {
				require.GreaterOrEqual(t, p.at.Sub(polls[i-1].at), interval/2, "task %s polled twice in one interval", id)
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	require.Len(t, d.by, n)
	share := map[string]int{}
	for id, by := range d.by {
		require.Len(t, by, 1, "task %s delivered %d times", id, len(by))
		share[by[0]]++
	}
	t.Logf("deliveries per replica: %v", share)
	require.Equal(t, map[string]int{"r0": n / 3, "r1": n / 3, "r2": n / 3}, share, "every replica does its share")
}

// TestReconcileReplicaCrash: the replica holding every lease dies (no renewals, no hand-back);
// the two others take its tasks over once the leases lapse and deliver each exactly once,
// within the two minutes promised with the defaults: the test keeps the defaults' ratios
// (lease TTL 60 s = 2 intervals of 30 s; two minutes = 4 intervals).
func TestReconcileReplicaCrash(t *testing.T) {
	t.Parallel()
	const interval = 2 * time.Second
	const leaseTTL = interval * (DefaultLeaseTTL / runway.DefaultPollInterval) // 2 intervals
	// Under one replica's lease cap at this interval (200), so that r0 holds every task.
	const n = 150
	require.Less(t, DefaultLeaseTTL+runway.DefaultPollInterval/3+runway.DefaultPollInterval, 2*time.Minute,
		"the takeover bound with the defaults")
	store, _ := newTestStore(t, WithLeaseTTL(leaseTTL))
	ids := addTasks(t, store, n)
	api := newKieFake(t)
	d := newDeliveries()
	r0 := startJReplica(t, "r0", store, api, d, interval)
	recvN(t, api.polled, n, "r0 polling every task")
	startJReplica(t, "r1", store, api, d, interval)
	startJReplica(t, "r2", store, api, d, interval)

	r0.journal.crashed.Store(true)
	r0.stop()
	killed := time.Now()
	api.finish()
	recvN(t, d.first, n, "every delivery")
	took := time.Since(killed)
	// The leases lapse within leaseTTL of r0's last renewal; a survivor's next refresh (every
	// interval/3) takes them and polls each within an interval: 3.33 intervals at most, where
	// two minutes are 4 of them.
	require.Less(t, took, 4*interval, "takeover within the scaled two minutes")

	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		require.Len(t, d.by[id], 1, "task %s", id)
		require.NotEqual(t, "r0", d.by[id][0], "task %s delivered by the dead replica", id)
	}
}
