package runwaytest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// service is one life of a service that journals its tasks: a journal file opened at start,
// a client on it, the client's callback handler behind the service's public callback URL,
// and Reconcile running next to it.
type service struct {
	j    *runway.FileJournal
	c    *runway.Client
	stop func()
}

// restartRig is what outlives the service's restarts: the fake Kie, the journal's path, the
// public callback URL (answering 503 while no service is up, as a load balancer would), the
// deduper (durable in a real deployment, such as redisstore's) and the record of deliveries.
type restartRig struct {
	t       *testing.T
	srv     *runwaytest.Server
	path    string
	front   *httptest.Server
	handler atomic.Pointer[http.Handler]
	dedupe  runway.Deduper
	tr      *http.Transport

	mu      sync.Mutex
	results map[string][]*runway.Result // every successful result-func call per task
}

func newRestartRig(t *testing.T, srv *runwaytest.Server) *restartRig {
	rig := &restartRig{t: t, srv: srv, path: filepath.Join(t.TempDir(), "journal"),
		dedupe: runway.NewMemoryDeduper(0), results: make(map[string][]*runway.Result)}
	rig.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := rig.handler.Load()
		if h == nil {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	t.Cleanup(rig.front.Close)
	rig.tr = http.DefaultTransport.(*http.Transport).Clone()
	rig.tr.MaxIdleConnsPerHost = 256
	t.Cleanup(rig.tr.CloseIdleConnections)
	return rig
}

func (rig *restartRig) record(_ context.Context, r *runway.Result) error {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	cp := *r
	rig.results[r.TaskID] = append(rig.results[r.TaskID], &cp)
	return nil
}

func (rig *restartRig) delivered() int {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return len(rig.results)
}

// start brings a service up on the journal file.
func (rig *restartRig) start(interval time.Duration) *service {
	t := rig.t
	j, err := runway.NewFileJournal(rig.path)
	require.NoError(t, err)
	c := client(t, rig.srv, runway.WithJournal(j),
		runway.WithHTTPClient(&http.Client{Transport: rig.tr, Timeout: runway.DefaultRequestTimeout}))
	var h http.Handler = c.CallbackHandler(runway.WithHMACKey(e2eHMACKey), runway.WithResultFunc(rig.record),
		runway.WithDeduper(rig.dedupe))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.(*runway.CallbackHandler).Reconcile(ctx, runway.WithPollInterval(interval)) }()
	rig.handler.Store(&h)
	return &service{j: j, c: c, stop: func() {
		rig.handler.Store(nil)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.NoError(t, c.Close())
		require.NoError(t, j.Close())
	}}
}

// TestE2EChaosRestarts is the chaos run of a service that journals its tasks and never waits
// on them: 1 000 tasks submitted in three batches under the chaos mix, the service restarted
// (new journal handle, client, handler and Reconcile on the same file) after the first and the
// second batch, callbacks answered 503 while it is down. Every task must be delivered to the
// result func exactly once, with the scripted outcome and its Meta, whether by a callback or
// by Reconcile (for dropped callbacks, and those given up on during a restart); no task is
// created twice; the journal ends empty. (An early callback, which the fake completes before
// it answers the submission, comes without Meta: the id is not known yet.)
func TestE2EChaosRestarts(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	seed := chaosSeed(t)
	t.Logf("chaos seed %d (replay: RUNWAY_CHAOS_SEED=%d)", seed, seed)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	steps := runwaytest.Steps{Wait: 100 * time.Millisecond, Queueing: 100 * time.Millisecond, Generating: 300 * time.Millisecond}
	srv := start(t, runwaytest.WithHMACKey(e2eHMACKey), runwaytest.WithChaos(runwaytest.DefaultChaos(seed)), runwaytest.WithSteps(steps))
	rig := newRestartRig(t, srv)
	const interval = time.Second

	ids := make([]string, chaosTasks)
	svc := rig.start(interval)
	for batch := range 3 {
		var wg sync.WaitGroup
		for i := batch * chaosTasks / 3; i < (batch+1)*chaosTasks/3; i++ {
			wg.Go(func() {
				req := e2eRequest(fmt.Sprintf("restart task %d", i), rig.front.URL)
				req.Meta = map[string]string{"i": strconv.Itoa(i)}
				id, err := svc.c.Generate(ctx, req)
				assert.NoError(t, err, "seed %d: task %d", seed, i)
				ids[i] = id
			})
		}
		wg.Wait()
		if batch < 2 {
			svc.stop()
			svc = rig.start(interval)
		}
	}
	require.NoError(t, srv.WaitIdle(ctx), "seed %d: callback deliveries still running", seed)
	tick := time.NewTicker(10 * time.Millisecond) // an event wait: the count only grows
	for rig.delivered() < chaosTasks {
		select {
		case <-ctx.Done():
			t.Fatalf("seed %d: %d of %d tasks delivered", seed, rig.delivered(), chaosTasks)
		case <-tick.C:
		}
	}
	tick.Stop()
	svc.stop()

	require.Len(t, srv.Tasks(), chaosTasks, "seed %d: one task per submission, none created twice", seed)
	viaPoll := 0
	rig.mu.Lock()
	defer rig.mu.Unlock()
	for i, id := range ids {
		got := rig.results[id]
		require.Len(t, got, 1, "seed %d: task %d (%s) delivered %d times", seed, i, id, len(got))
		r := got[0]
		info, ok := srv.Task(id)
		require.True(t, ok)
		checkChaosOutcome(t, seed, info, chaosRun{id: id, res: r, waitErr: r.Err()})
		if info.Script.Callback.Early && r.Source == runway.SourceCallback {
			// The fake answers the submission only after the callback was answered: the
			// handler cannot know the task's journal entry (it waits a little, then goes on).
			require.Nil(t, r.Meta, "seed %d: task %s", seed, id)
		} else {
			require.Equal(t, map[string]string{"i": strconv.Itoa(i)}, r.Meta, "seed %d: task %s", seed, id)
		}
		if r.Source == runway.SourcePoll {
			viaPoll++
		}
	}
	j, err := runway.NewFileJournal(rig.path)
	require.NoError(t, err)
	defer j.Close()
	left, err := j.Pending(ctx)
	require.NoError(t, err)
	require.Empty(t, left, "seed %d: the journal ends empty", seed)
	t.Logf("seed %d: %d tasks, %d delivered by Reconcile", seed, chaosTasks, viaPoll)
}
