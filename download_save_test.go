package runway

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSaveResultNamesNeverCollide is issue 11 item 9: task X's cover used to be X-cover<ext>,
// the very name of task "X-cover"'s video when the cover came as video/mp4, and the second
// save then counted the first's file as its own and fetched nothing. Each (task, file) pair
// now has its own path, also for ids that differ only in case, and a re-run still does no
// network work.
func TestSaveResultNamesNeverCollide(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		serveFile([]byte("file "+r.URL.Path), "video/mp4")(w, r, n) // even the covers say video/mp4
	})
	c, _ := newDownloadClient(t, "")
	dir := t.TempDir()
	results := []*Result{
		savableResult("X", host.URL+"/X/video", host.URL+"/X/cover"),
		savableResult("X-cover", host.URL+"/X-cover/video", host.URL+"/X-cover/cover"),
		savableResult("x", host.URL+"/x/video", host.URL+"/x/cover"),
		savableResult("x.cover", host.URL+"/x.cover/video", ""),
		savableResult("AbC", host.URL+"/AbC/video", ""),
		savableResult("abc", host.URL+"/abc/video", ""),
		savableResult("ABC", host.URL+"/ABC/video", ""),
	}
	folded := map[string]string{} // lower-cased file name -> what it holds
	for _, r := range results {
		saved, err := c.SaveResult(context.Background(), r, dir, WithAllowPrivateHosts())
		require.NoError(t, err, r.TaskID)
		for _, f := range []struct{ path, url string }{{saved.VideoPath, r.VideoURL}, {saved.ImagePath, r.ImageURL}} {
			if f.url == "" {
				require.Empty(t, f.path)
				continue
			}
			got, err := os.ReadFile(f.path)
			require.NoError(t, err)
			want := "file " + strings.TrimPrefix(f.url, host.URL)
			require.Equal(t, want, string(got), "%s holds another pair's file", f.path)
			key := strings.ToLower(filepath.Base(f.path))
			require.NotContains(t, folded, key, "%s and %s share a name on a case-insensitive file system", folded[key], want)
			folded[key] = want
		}
		found, err := FindSavedFiles(dir, r.TaskID)
		require.NoError(t, err)
		require.Equal(t, saved, found, "FindSavedFiles computes the same paths")
	}
	require.Len(t, host.requests(), len(folded), "every file was fetched once")
	require.Len(t, dirEntries(t, dir), len(folded))

	for _, r := range results { // a re-run finds everything and fetches nothing
		_, err := c.SaveResult(context.Background(), r, dir)
		require.NoError(t, err)
	}
	require.Len(t, host.requests(), len(folded), "re-run must do no network work")
}

// TestFileStemIsInjective checks the naming scheme over every id of up to three characters
// from an alphabet made of the troublesome characters: no two (id, role, extension) triples
// share a file name, even compared case-insensitively, and no name is hidden, holds a path
// separator or reaches the length limit.
func TestFileStemIsInjective(t *testing.T) {
	t.Parallel()
	alphabet := []string{"a", "A", "c", "-", "_", ".", "~", "/", "\\", "é"}
	ids := []string{"con", "nul", "Com1", "lpt9", "ee603959-debb-48d1-98c4-a6d1c717eba6",
		strings.Repeat("A", 128), strings.Repeat("A", 127) + "a", strings.Repeat("_", 128), strings.Repeat("é", 64)}
	for _, a := range alphabet {
		ids = append(ids, a)
		for _, b := range alphabet {
			ids = append(ids, a+b)
			for _, c := range alphabet {
				ids = append(ids, a+b+c)
			}
		}
	}
	seen := map[string]string{}
	for _, id := range ids {
		stem, err := fileStem(id)
		require.NoError(t, err, id)
		require.LessOrEqual(t, len(stem), maxFileStem, id)
		require.NotContains(t, stem, ".", "the first '.' ends the name: %q", id)
		require.NotEqual(t, byte('.'), stem[0])
		require.NotContains(t, []string{"con", "prn", "aux", "nul", "com1", "lpt9"}, stem, "a Windows device name")
		require.Equal(t, strings.ToLower(stem), stem, "no upper case: %q", id)
		require.False(t, strings.ContainsAny(stem, `/\`), id)
		names := []string{}
		for _, e := range videoExts {
			names = append(names, stem+e)
		}
		for _, e := range imageExts {
			names = append(names, stem+coverSuffix+e)
		}
		for _, n := range names {
			key := strings.ToLower(n)
			if prev, dup := seen[key]; dup {
				t.Fatalf("ids %q and %q share the file name %q", prev, id, n)
			}
			seen[key] = id
		}
	}
	stem, _ := fileStem("ee603959-debb-48d1-98c4-a6d1c717eba6")
	require.Equal(t, "ee603959-debb-48d1-98c4-a6d1c717eba6", stem, "a Kie task id is its own name")
	stem, _ = fileStem("Task_1")
	require.Equal(t, "_54ask_5f1", stem, "the example in SaveResult's doc")
	_, err := FindSavedFiles(t.TempDir(), "")
	require.Error(t, err)
	found, err := FindSavedFiles(t.TempDir(), "missing")
	require.NoError(t, err)
	require.Equal(t, SavedFiles{}, found)
}

// TestSaveQueueLogsFailuresAtWarn is issue 12 item 2 for SaveQueue: with no logger given to
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
		c, err := NewClient(testAPIKey, WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: dialPipeHost}}))
		require.NoError(t, err)
		t.Cleanup(func() {
			c.hc.CloseIdleConnections()
			_ = c.Close()
		})
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

// setDefaultLogger makes l the default slog logger until the test ends. slog.SetDefault also
// points the log package at l, and setting the previous logger back does not undo that, so
// the log package's writer and flags are restored too.
func setDefaultLogger(t *testing.T, l *slog.Logger) {
	t.Helper()
	prev, w, flags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(l)
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(w)
		log.SetFlags(flags)
	})
}

// TestSetDefaultLoggerRestoresLogPackage: after a test that swapped the default logger,
// the log package writes where it wrote before, not into that test's buffer.
func TestSetDefaultLoggerRestoresLogPackage(t *testing.T) {
	w, flags := log.Writer(), log.Flags()
	var logs logBuffer
	t.Run("swap", func(t *testing.T) {
		setDefaultLogger(t, slog.New(slog.NewJSONHandler(&logs, nil)))
		log.Print("during")
	})
	require.Contains(t, logs.String(), "during")
	require.True(t, log.Writer() == w, "the log package's writer is restored")
	require.Equal(t, flags, log.Flags())
}

// decodeStem reverses fileStem for names that were not cut.
func decodeStem(s string) (string, bool) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b = append(b, s[i])
			continue
		}
		if i+3 > len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b = append(b, byte(v))
		i += 2
	}
	return string(b), true
}

// FuzzFileStem checks the naming scheme's promises for any valid task id: the name decodes
// back to the id unless it was cut (then it ends in '~' and a hash), and it is lower case,
// holds no '.', no path separator, and fits the length bound.
func FuzzFileStem(f *testing.F) {
	for _, s := range []string{"ee603959-debb-48d1-98c4-a6d1c717eba6", "X-cover", "x.cover", "AbC", "../../etc", "con",
		"-lead", "日本", strings.Repeat("Z", 128)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		stem, err := fileStem(id)
		if err != nil {
			return // not a valid task id: refused, nothing saved
		}
		require.LessOrEqual(t, len(stem), maxFileStem)
		require.Equal(t, strings.ToLower(stem), stem)
		require.False(t, strings.ContainsAny(stem, `./\`), stem)
		if before, hash, cut := strings.Cut(stem, "~"); cut {
			require.Len(t, hash, 24, stem)
			_, ok := decodeStem(before)
			require.True(t, ok, "cut inside an escape: %q", stem)
			return
		}
		got, ok := decodeStem(stem)
		require.True(t, ok, stem)
		require.Equal(t, id, got)
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

// TestSaveResultRecognisesEarlierFiles: an upgrade does not fetch again what v0.1 saved
// (<id><ext>, <id>-cover<ext>) for ids whose v0.1 names cannot be another task's, nor a file
// saved earlier under another extension of its kind; v0.1 names that could belong to
// another task are not taken.
func TestSaveResultRecognisesEarlierFiles(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("fresh"), ""))
	c, _ := newDownloadClient(t, "")
	write := func(t *testing.T, dir string, names ...string) {
		t.Helper()
		for _, n := range names {
			require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte("old "+n), 0o644))
		}
	}
	save := func(t *testing.T, dir, id string) SavedFiles {
		t.Helper()
		saved, err := c.SaveResult(context.Background(), savableResult(id, host.URL+"/v.mp4?sig=1", host.URL+"/c.png?sig=2"),
			dir, WithAllowPrivateHosts())
		require.NoError(t, err)
		found, err := FindSavedFiles(dir, id)
		require.NoError(t, err)
		require.Equal(t, saved, found, "FindSavedFiles agrees")
		return saved
	}
	const kie = "ee603959-debb-48d1-98c4-a6d1c717eba6"

	t.Run("v0.1 names, other extensions", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, kie+".mov", kie+"-cover.jpg", "a.b.webm", "a.b-cover.gif")
		before := len(host.requests())
		require.Equal(t, SavedFiles{VideoPath: filepath.Join(dir, kie+".mov"), ImagePath: filepath.Join(dir, kie+"-cover.jpg")},
			save(t, dir, kie))
		require.Equal(t, SavedFiles{VideoPath: filepath.Join(dir, "a.b.webm"), ImagePath: filepath.Join(dir, "a.b-cover.gif")},
			save(t, dir, "a.b"))
		require.Len(t, host.requests(), before, "nothing fetched")
	})

	t.Run("names that may be another task's", func(t *testing.T) {
		dir := t.TempDir()
		// "_63on.mp4" is task "con"'s video now; "Task_1.mp4" is a v0.1 name whose
		// case-folded form could be another task's.
		write(t, dir, "_63on.mp4", "Task_1.mp4", "Task_1-cover.png")
		before := len(host.requests())
		saved := save(t, dir, "_63on")
		require.Equal(t, filepath.Join(dir, "_5f63on.mp4"), saved.VideoPath)
		saved = save(t, dir, "Task_1")
		require.Equal(t, filepath.Join(dir, "_54ask_5f1.mp4"), saved.VideoPath)
		require.Equal(t, filepath.Join(dir, "_54ask_5f1.cover.png"), saved.ImagePath)
		require.Len(t, host.requests(), before+4, "fetched afresh")
		got, err := os.ReadFile(filepath.Join(dir, "_63on.mp4"))
		require.NoError(t, err)
		require.Equal(t, "old _63on.mp4", string(got), "the other task's file is untouched")
	})
}
