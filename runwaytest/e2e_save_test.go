package runwaytest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// TestE2ESaveFromCallbacks saves results from the callback handler, inline
// (SaveResultFunc) and through a SaveQueue, while half of the tasks have expired file URLs
// (refreshed through download-url, itself answering 503 at first), callbacks are duplicated
// and some tasks fail: every successful task's files are saved byte for byte, once; failed
// tasks write nothing.
func TestE2ESaveFromCallbacks(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"SaveResultFunc", "SaveQueue"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx := ctx(t)
			srv := start(t, runwaytest.WithHMACKey(e2eHMACKey))
			c := client(t, srv)
			dir := t.TempDir()

			var mu sync.Mutex
			saved := make(map[string]runway.SavedFiles)
			onSaved := runway.WithOnSaved(func(r *runway.Result, s runway.SavedFiles, err error) {
				assert.NoError(t, err, r.TaskID)
				mu.Lock()
				defer mu.Unlock()
				_, dup := saved[r.TaskID]
				assert.False(t, dup, "saved twice: %s", r.TaskID)
				saved[r.TaskID] = s
			})
			fn := c.SaveResultFunc(dir, runway.WithAllowPrivateHosts(), onSaved)
			var q *runway.SaveQueue
			if mode == "SaveQueue" {
				var err error
				q, err = runway.NewSaveQueue(c, dir, 3, 64, runway.WithAllowPrivateHosts(), onSaved)
				require.NoError(t, err)
				fn = q.Enqueue
			}
			mux := http.NewServeMux()
			mux.Handle("POST /kie/callback", c.CallbackHandler(runway.WithHMACKey(e2eHMACKey), runway.WithResultFunc(fn)))
			ts := httptest.NewServer(mux)
			t.Cleanup(ts.Close)
			srv.InjectFault(runwaytest.PathDownloadURL, 2, runwaytest.ServerError(http.StatusServiceUnavailable))

			const n = 12
			ids := make([]string, n)
			for i := range ids {
				sc := runwaytest.Script{
					Poll:     runwaytest.PollFaults{Expired: i%2 == 0},
					Callback: runwaytest.CallbackFaults{Copies: 1 + i%3, Concurrent: i%4 == 1},
				}
				if i%5 == 4 {
					sc.Outcome = runwaytest.FailSize()
				}
				prompt := fmt.Sprintf("save %d", i)
				srv.ScriptPrompt(prompt, sc)
				id, err := c.Generate(ctx, e2eRequest(prompt, ts.URL+"/kie/callback"))
				require.NoError(t, err)
				ids[i] = id
			}
			require.NoError(t, srv.WaitIdle(ctx))
			if q != nil {
				require.NoError(t, q.Close(ctx))
			}

			mu.Lock()
			defer mu.Unlock()
			for i, id := range ids {
				info, _ := srv.Task(id)
				assert.Zero(t, info.Callback.GaveUp, "task %d", i)
				if info.Script.Outcome.Failed() {
					assert.NotContains(t, saved, id, "task %d failed: nothing to save", i)
					continue
				}
				s, ok := saved[id]
				require.True(t, ok, "task %d not saved", i)
				for path, url := range map[string]string{s.VideoPath: info.VideoURL, s.ImagePath: info.ImageURL} {
					want, ok := srv.FileBytes(url)
					require.True(t, ok)
					got, err := os.ReadFile(path)
					require.NoError(t, err)
					assert.Equal(t, want, got, "task %d: %s", i, path)
				}
			}
			assert.Equal(t, 2, faulted(srv, runwaytest.PathDownloadURL), "the refresh met its 503s")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 2*len(saved), "no temporary or extra files left")
		})
	}
}
