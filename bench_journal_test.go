package runway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchEntry is a realistic journal entry: a 36-byte task id and a small Meta.
func benchEntry(i int) JournalEntry {
	return JournalEntry{TaskID: benchTaskID(i), SubmittedAt: testNow, Meta: map[string]string{"order": "order-0000012345"}}
}

// BenchmarkFileJournal measures one durable Add and one durable Remove (each written and
// fsynced before it returns) against the baseline of a bare write+fsync of the same record
// bytes to a plain file in the same directory. Journal op and baseline op alternate within
// each iteration, so that both see the same disk (a shared VM disk's fsync time drifts a lot
// from one second to the next); each reports journal-ns/op, baseline-ns/op and x-baseline,
// their ratio (target <= 1.5). For remove, the entry's Add (and, for the baseline, a write
// of the add record with its fsync) comes first, untimed.
func BenchmarkFileJournal(b *testing.B) {
	ctx := context.Background()
	addRec := func(i int) []byte {
		p, _ := json.Marshal(benchEntry(i))
		return append([]byte(nil), (&FileJournal{}).record(opAdd, p)...)
	}
	removeRec := func(i int) []byte {
		return append([]byte(nil), (&FileJournal{}).record(opRemove, []byte(benchTaskID(i)))...)
	}
	for _, remove := range []bool{false, true} {
		name := "add"
		if remove {
			name = "remove"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			j, err := NewFileJournal(filepath.Join(dir, "journal"))
			require.NoError(b, err)
			defer j.Close()
			f, err := os.OpenFile(filepath.Join(dir, "plain"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
			require.NoError(b, err)
			defer f.Close()
			writeSync := func(rec []byte) {
				_, err := f.Write(rec)
				require.NoError(b, err)
				require.NoError(b, f.Sync())
			}
			var tj, tb time.Duration
			i := 0
			for b.Loop() {
				if remove {
					require.NoError(b, j.Add(ctx, benchEntry(i)))
					writeSync(addRec(i))
				}
				rec := addRec(i)
				if remove {
					rec = removeRec(i)
				}
				t0 := time.Now()
				if remove {
					require.NoError(b, j.Remove(ctx, benchTaskID(i)))
				} else {
					require.NoError(b, j.Add(ctx, benchEntry(i)))
				}
				t1 := time.Now()
				writeSync(rec)
				tb += time.Since(t1)
				tj += t1.Sub(t0)
				i++
			}
			b.ReportMetric(float64(tj.Nanoseconds())/float64(i), "journal-ns/op")
			b.ReportMetric(float64(tb.Nanoseconds())/float64(i), "baseline-ns/op")
			b.ReportMetric(float64(tj)/float64(tb), "x-baseline")
		})
	}
}

// BenchmarkFileJournalSize adds and removes 100 000 entries (each one added, then removed
// 100 adds later, so about 100 are pending at any time) and reports
// the file's size at the end (B-file) and at its largest (peak-B-file), against the size of
// the 100 records still pending (B-pending): compaction keeps the file proportional to what
// is pending, not to what was ever written (about 20 MB here). fsync is off for this one
// (200 000 of them take minutes on a VM disk): it changes no byte of the file.
func BenchmarkFileJournalSize(b *testing.B) {
	ctx := context.Background()
	const n, lag = 100_000, 100
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "journal")
		j, err := NewFileJournal(path)
		require.NoError(b, err)
		j.noSync = true
		var peak int64
		for i := range n {
			require.NoError(b, j.Add(ctx, benchEntry(i)))
			if i >= lag {
				require.NoError(b, j.Remove(ctx, benchTaskID(i-lag)))
			}
			peak = max(peak, j.size)
		}
		pending := 0
		for i := n - lag; i < n; i++ {
			p, _ := json.Marshal(benchEntry(i))
			pending += len((&FileJournal{}).record(opAdd, p))
		}
		require.NoError(b, j.Close())
		fi, err := os.Stat(path)
		require.NoError(b, err)
		b.ReportMetric(float64(fi.Size()), "B-file")
		b.ReportMetric(float64(peak), "peak-B-file")
		b.ReportMetric(float64(pending), "B-pending")
	}
}

// spreadAPI answers every details request with "generating" and counts the polls per time
// window since start.
type spreadAPI struct {
	start   time.Time
	window  time.Duration
	windows []atomic.Int64
}

func (s *spreadAPI) RoundTrip(req *http.Request) (*http.Response, error) {
	if w := int(time.Since(s.start) / s.window); w < len(s.windows) {
		s.windows[w].Add(1)
	}
	body := `{"code":200,"msg":"success","data":{"taskId":"` + req.URL.Query().Get("taskId") + `","state":"generating"}}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

// BenchmarkReconcile10k runs Reconcile over 10 000 pending tasks that never finish, with a
// one-second poll interval (the shortest allowed), for four intervals, and reports:
//   - B/task: the live heap Reconcile adds per pending task once it follows them all
//     (its workers' stacks included), against baseline-B/task, the live heap of an
//     in-memory journal holding the same entries (id, time, a one-key Meta);
//   - peak/avg: the most polls in any tenth of an interval divided by the average per tenth,
//     over the three intervals after the first (target <= 1.3; polling every task at the
//     start of each interval would score 10);
//   - polls/task/interval: the polls sent per task per interval over those three intervals
//     (at most 1).
func BenchmarkReconcile10k(b *testing.B) {
	const n, interval = 10_000, time.Second
	const tenth = interval / 10
	for b.Loop() {
		before := heapInUse()
		j := newMemJournal()
		for i := range n {
			e := benchEntry(i)
			e.SubmittedAt = time.Now()
			require.NoError(b, j.Add(context.Background(), e))
		}
		baseline := float64(heapInUse()-before) / n

		api := &spreadAPI{start: time.Now(), window: tenth, windows: make([]atomic.Int64, 40)}
		c, err := NewClient("test-key", WithBaseURL("https://api.kie.test"), WithHTTPClient(&http.Client{Transport: api}), WithJournal(j))
		require.NoError(b, err)
		h := c.CallbackHandler(WithResultFunc(func(context.Context, *Result) error { return nil }))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		base := heapInUse()
		go func() { done <- h.Reconcile(ctx, WithPollInterval(interval)) }()
		<-time.After(2 * interval) // polls over real time are what is measured
		perTask := float64(int64(heapInUse())-int64(base)) / n
		<-time.After(2 * interval)
		cancel()
		<-done
		c.Close()

		var total, peak int64
		for w := 10; w < 40; w++ {
			v := api.windows[w].Load()
			total += v
			peak = max(peak, v)
		}
		b.ReportMetric(perTask, "B/task")
		b.ReportMetric(baseline, "baseline-B/task")
		b.ReportMetric(float64(peak)/(float64(total)/30), "peak/avg")
		b.ReportMetric(float64(total)/n/3, "polls/task/interval")
	}
}
