package runway

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSaveQueue(t *testing.T) {
	verifyNoDownloadLeaks(t)
	started := make(chan string, 10)
	gate := make(chan struct{})
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		started <- r.URL.Path
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		serveFile([]byte("video "+r.URL.Path), "")(w, r, n)
	})
	c, _ := newDownloadClient(t, "")

	t.Run("full queue refuses, Close drains", func(t *testing.T) {
		dir := t.TempDir()
		var mu sync.Mutex
		var done []string
		q, err := NewSaveQueue(c, dir, 1, 1, WithAllowPrivateHosts(), WithOnSaved(func(r *Result, _ SavedFiles, err error) {
			assert.NoError(t, err)
			mu.Lock()
			done = append(done, r.TaskID)
			mu.Unlock()
		}))
		require.NoError(t, err)
		ctx := context.Background()
		require.NoError(t, q.Enqueue(ctx, savableResult("a", host.URL+"/a.mp4", "")))
		require.Equal(t, "/a.mp4", <-started) // the only worker is busy with a
		require.NoError(t, q.Enqueue(ctx, savableResult("b", host.URL+"/b.mp4", "")))
		require.ErrorIs(t, q.Enqueue(ctx, savableResult("c", host.URL+"/c.mp4", "")), ErrSaveQueueFull)
		require.NoError(t, q.Enqueue(ctx, &Result{TaskID: "f", Code: 500, Message: "failed"}), "failed tasks are skipped")
		require.Error(t, q.Enqueue(ctx, &Result{TaskID: "n", Code: 200}), "nothing to save")

		close(gate)
		require.NoError(t, q.Close(ctx))
		require.Equal(t, "/b.mp4", <-started)
		require.Equal(t, []string{"a", "b"}, done)
		require.ElementsMatch(t, []string{"a.mp4", "b.mp4"}, dirEntries(t, dir))
		require.ErrorIs(t, q.Enqueue(ctx, savableResult("d", host.URL+"/d.mp4", "")), ErrSaveQueueClosed)
		require.NoError(t, q.Close(ctx), "Close twice")
	})

	t.Run("Close with an ended context cancels the saves", func(t *testing.T) {
		blocked := newFileHost(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			started <- r.URL.Path
			<-r.Context().Done()
		})
		dir := t.TempDir()
		q, err := NewSaveQueue(c, dir, 2, 4, WithAllowPrivateHosts())
		require.NoError(t, err)
		require.NoError(t, q.Enqueue(context.Background(), savableResult("x", blocked.URL+"/x.mp4", "")))
		<-started
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, q.Close(ctx), context.Canceled)
		require.Empty(t, dirEntries(t, dir))
	})

	t.Run("bad arguments", func(t *testing.T) {
		_, err := NewSaveQueue(c, t.TempDir(), 0, 1)
		require.Error(t, err)
		_, err = NewSaveQueue(nil, t.TempDir(), 1, 1)
		require.Error(t, err)
		_, err = NewSaveQueue(c, "", 1, 1)
		require.Error(t, err)
	})
}

// TestSaveQueueLogsFailuresAtWarn pins where SaveQueue's failures go: with no logger given to
// the client, a failed background save is logged to slog.Default() at Warn with task_id;
// with one given, to that logger.
func TestSaveQueueLogsFailuresAtWarn(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.WriteHeader(http.StatusBadRequest) // permanent: no retry, no link refresh
	})
	failOne := func(t *testing.T, c *Client) {
		t.Helper()
		failed := make(chan struct{})
		q, err := NewSaveQueue(c, t.TempDir(), 1, 1, WithAllowPrivateHosts(),
			WithOnSaved(func(*Result, SavedFiles, error) { close(failed) }))
		require.NoError(t, err)
		require.NoError(t, q.Enqueue(context.Background(), savableResult("bad-1", host.URL+"/v.mp4", "")))
		<-failed
		require.NoError(t, q.Close(context.Background())) // the worker has logged by now
	}
	jsonLogger := func(b *logBuffer) *slog.Logger {
		return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	requireWarn := func(t *testing.T, logs string) {
		t.Helper()
		require.Contains(t, logs, `"level":"WARN","msg":"runway: background save failed"`)
		require.Contains(t, logs, `"task_id":"bad-1"`)
		require.NotContains(t, logs, "taskId")
	}

	t.Run("no logger: slog.Default", func(t *testing.T) {
		var logs logBuffer
		setDefaultLogger(t, jsonLogger(&logs))
		c := newTestClient(t, WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: dialPipeHost}}))
		failOne(t, c)
		requireWarn(t, logs.String())
	})

	t.Run("WithLogger", func(t *testing.T) {
		var logs, def logBuffer
		setDefaultLogger(t, jsonLogger(&def))
		c, _ := newDownloadClient(t, "", WithLogger(jsonLogger(&logs)))
		failOne(t, c)
		requireWarn(t, logs.String())
		require.Empty(t, def.String())
	})
}

// TestSaveQueueCloseReportsUnstartedResults: when Close's context ends, the save in
// progress is cancelled and reported as a failure, and the results still queued are not
// run at all: WithOnSaved gets each with an error matching ErrSaveQueueClosed and the
// context's error, and one Warn reports how many there were.
func TestSaveQueueCloseReportsUnstartedResults(t *testing.T) {
	verifyNoDownloadLeaks(t)
	started := make(chan string, 4)
	host := newFileHost(t, func(_ http.ResponseWriter, r *http.Request, _ int) {
		started <- r.URL.Path
		<-r.Context().Done()
	})
	var logs logBuffer
	c, _ := newDownloadClient(t, "", WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	var mu sync.Mutex
	reported := map[string]error{}
	q, err := NewSaveQueue(c, t.TempDir(), 1, 3, WithAllowPrivateHosts(),
		WithOnSaved(func(r *Result, saved SavedFiles, err error) {
			assert.Equal(t, SavedFiles{}, saved)
			mu.Lock()
			reported[r.TaskID] = err
			mu.Unlock()
		}))
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, q.Enqueue(context.Background(), savableResult(id, host.URL+"/"+id+".mp4", "")))
	}
	require.Equal(t, "/a.mp4", <-started) // the only worker is busy with a; b and c wait
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, q.Close(ctx), context.Canceled)

	require.Len(t, host.requests(), 1, "queued results are not started")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reported, 3)
	require.ErrorIs(t, reported["a"], context.Canceled)
	require.NotErrorIs(t, reported["a"], ErrSaveQueueClosed, "a had started: an ordinary failure")
	for _, id := range []string{"b", "c"} {
		require.ErrorIs(t, reported[id], ErrSaveQueueClosed, id)
		require.ErrorIs(t, reported[id], context.Canceled, id)
		require.ErrorContains(t, reported[id], "task "+id+" not started")
	}
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, `"msg":"runway: background save failed"`), "only the started save: %s", out)
	require.Equal(t, 1, strings.Count(out, `"level":"WARN","msg":"runway: save queue closed with results not saved"`), out)
	require.Contains(t, out, `"reason":"2 queued results not started before Close's context ended"`)
}

// TestSaveQueueJobIsBounded pins DL-4 for SaveQueue: a trickling result cannot pin
// a worker; its job ends at the queue's WithDownloadTimeout and the next job runs.
func TestSaveQueueJobIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startTrickleHost(t, WithLogger(discardLogger()))
		type saved struct {
			id  string
			err error
			at  time.Duration
		}
		results := make(chan saved, 2)
		start := time.Now()
		q, err := NewSaveQueue(c, t.TempDir(), 1, 2, WithAllowPrivateHosts(), WithDownloadTimeout(time.Minute),
			WithOnSaved(func(r *Result, _ SavedFiles, err error) {
				results <- saved{r.TaskID, err, time.Since(start)}
			}))
		require.NoError(t, err)
		require.NoError(t, q.Enqueue(context.Background(), savableResult("slow-1", "http://files.example.com/a.mp4", "")))
		require.NoError(t, q.Enqueue(context.Background(), savableResult("slow-2", "http://files.example.com/b.mp4", "")))
		for i, id := range []string{"slow-1", "slow-2"} {
			select {
			case s := <-results:
				require.Equal(t, id, s.id)
				require.ErrorIs(t, s.err, ErrDownloadTimeout)
				require.Equal(t, time.Duration(i+1)*time.Minute, s.at, "each job bounded on its own")
			case <-time.After(time.Hour): // fake time
				t.Fatalf("job %s not bounded", id)
			}
		}
		require.NoError(t, q.Close(context.Background()))
	})
}
