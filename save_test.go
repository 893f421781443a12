package runway

import (
	"context"
	"errors"
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

func savableResult(id, video, cover string) *Result {
	return &Result{TaskID: id, VideoURL: video, ImageURL: cover, Code: 200}
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveResultSavesBothAndRerunIsOffline(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video, cover := downloadPayload(400<<10), downloadPayload(30<<10)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/v/abc.mp4":
			serveFile(video, "video/mp4")(w, r, n)
		case "/c/download": // no extension: the Content-Type decides
			serveFile(cover, "image/png")(w, r, n)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	c, _ := newDownloadClient(t, "")
	dir := filepath.Join(t.TempDir(), "out")
	res := savableResult("task-123", host.URL+"/v/abc.mp4?sig=1", host.URL+"/c/download?sig=2")

	var mu sync.Mutex
	var calls [][2]int64
	progress := WithDownloadProgress(func(done, total int64) {
		mu.Lock()
		calls = append(calls, [2]int64{done, total})
		mu.Unlock()
	})
	saved, err := c.SaveResult(context.Background(), res, dir, WithAllowPrivateHosts(), progress)
	require.NoError(t, err)
	require.Equal(t, SavedFiles{
		VideoPath: filepath.Join(dir, "task-123.mp4"),
		ImagePath: filepath.Join(dir, "task-123.cover.png"),
	}, saved)
	got, err := os.ReadFile(saved.VideoPath)
	require.NoError(t, err)
	require.Equal(t, video, got)
	got, err = os.ReadFile(saved.ImagePath)
	require.NoError(t, err)
	require.Equal(t, cover, got)
	require.ElementsMatch(t, []string{"task-123.mp4", "task-123.cover.png"}, dirEntries(t, dir))
	requireMonotonic(t, calls, int64(len(video)+len(cover)))
	require.Len(t, host.requests(), 2)

	var hooked []SavedFiles
	again, err := c.SaveResult(context.Background(), res, dir, WithOnSaved(func(r *Result, s SavedFiles, err error) {
		assert.NoError(t, err)
		hooked = append(hooked, s)
	}))
	require.NoError(t, err)
	require.Equal(t, saved, again)
	require.Equal(t, []SavedFiles{saved}, hooked)
	require.Len(t, host.requests(), 2, "re-run must do no network work")
}

func TestSaveResultInterruptedLeavesNothing(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video := downloadPayload(512 << 10)
	release := make(chan struct{})
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Length", strconv.Itoa(len(video)))
		w.Write(video[:len(video)/2])
		http.NewResponseController(w).Flush()
		select { // hold the rest until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c, _ := newDownloadClient(t, "")
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kill := WithDownloadProgress(func(done, _ int64) {
		if done >= int64(len(video)/4) {
			cancel() // the copy is killed mid-way, with bytes in the temp file
		}
	})
	_, err := c.SaveResult(ctx, savableResult("t1", host.URL+"/v.mp4", ""), dir, WithAllowPrivateHosts(), kill)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, dirEntries(t, dir), "no final file and no temp file")
}

// TestSaveResultBrokenConnectionLeavesNothing is issue 6's atomic save with a failure other
// than cancellation: the file host sends half the body and drops the connection, retries are
// off, so SaveResult fails with the copy half done. The broken file leaves neither its final
// name nor a temp file; the other file, downloaded concurrently, is still saved.
func TestSaveResultBrokenConnectionLeavesNothing(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video, cover := downloadPayload(256<<10), downloadPayload(64<<10)
	halfThenDrop := func(body []byte) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/2])
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler) // closes the connection mid-body
		}
	}
	tests := []struct {
		name      string
		video     func(http.ResponseWriter, *http.Request, int)
		cover     func(http.ResponseWriter, *http.Request, int)
		broken    string
		wantSaved SavedFiles
		wantFiles []string
	}{
		{name: "video (the cover is still saved)", video: halfThenDrop(video), cover: serveFile(cover, ""), broken: "/v.mp4",
			wantSaved: SavedFiles{ImagePath: "t3.cover.jpg"}, wantFiles: []string{"t3.cover.jpg"}},
		{name: "cover, the video saved", video: serveFile(video, ""), cover: halfThenDrop(cover), broken: "/c.jpg",
			wantSaved: SavedFiles{VideoPath: "t3.mp4"}, wantFiles: []string{"t3.mp4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.URL.Path == "/v.mp4" {
					tc.video(w, r, n)
					return
				}
				tc.cover(w, r, n)
			})
			c, sl := newDownloadClient(t, "")
			dir := t.TempDir()
			saved, err := c.SaveResult(context.Background(), savableResult("t3", host.URL+"/v.mp4", host.URL+"/c.jpg"), dir,
				WithAllowPrivateHosts(), WithDownloadRetries(0))
			require.Error(t, err)
			require.NotErrorIs(t, err, context.Canceled)
			require.ErrorContains(t, err, tc.broken, "the error names the broken file")
			want := tc.wantSaved
			for _, f := range []struct {
				path *string
				body []byte
			}{{&want.VideoPath, video}, {&want.ImagePath, cover}} {
				if *f.path != "" {
					*f.path = filepath.Join(dir, *f.path)
					got, err := os.ReadFile(*f.path)
					require.NoError(t, err)
					require.Equal(t, f.body, got)
				}
			}
			require.Equal(t, want, saved)
			require.Equal(t, tc.wantFiles, dirEntries(t, dir), "no final file and no .part file for the broken download")
			require.Empty(t, sl.all(), "no retry")
		})
	}
}

func TestSaveResultFailedCoverKeepsVideo(t *testing.T) {
	verifyNoDownloadLeaks(t)
	video := downloadPayload(10 << 10)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/v.mp4" {
			serveFile(video, "")(w, r, n)
			return
		}
		w.WriteHeader(http.StatusForbidden)
	})
	api := newDownloadURLAPI(t, func() string { return host.URL + "/still-forbidden.jpg?sig=x" })
	c, _ := newDownloadClient(t, api.URL)
	dir := t.TempDir()
	saved, err := c.SaveResult(context.Background(), savableResult("t2", host.URL+"/v.mp4", host.URL+"/c.jpg"), dir, WithAllowPrivateHosts())
	require.ErrorIs(t, err, ErrUnauthorized)
	require.Equal(t, filepath.Join(dir, "t2.mp4"), saved.VideoPath)
	require.Empty(t, saved.ImagePath)
	require.Equal(t, []string{"t2.mp4"}, dirEntries(t, dir))
}

func TestSaveResultRefusesUnsavableResults(t *testing.T) {
	verifyNoDownloadLeaks(t)
	c, _ := newDownloadClient(t, "")
	tests := map[string]*Result{
		"nil":      nil,
		"failed":   {TaskID: "t", Code: 400, Message: "content rejected", VideoURL: "http://example.com/v.mp4"},
		"no video": {TaskID: "t", Code: 200},
		"no id":    {Code: 200, VideoURL: "http://example.com/v.mp4"},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, err := c.SaveResult(context.Background(), r, dir)
			require.Error(t, err)
			require.NoDirExists(t, dir, "nothing written")
		})
	}
	_, err := c.SaveResult(context.Background(), savableResult("t", "http://example.com/v.mp4", ""), "")
	require.Error(t, err)
}

func TestSaveResultHostileTaskID(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("video"), "video/mp4"))
	c, _ := newDownloadClient(t, "")
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	seen := map[string]string{}
	for _, id := range []string{"../../escape", "/etc/passwd", "..", ".", ".hidden", `a\b`, "a/b", "a_b", "ok.id", "日本"} {
		saved, err := c.SaveResult(context.Background(), savableResult(id, host.URL+"/v.mp4", ""), dir, WithAllowPrivateHosts())
		require.NoError(t, err, id)
		require.Equal(t, dir, filepath.Dir(saved.VideoPath), id)
		name := filepath.Base(saved.VideoPath)
		require.False(t, strings.HasPrefix(name, "."), "hidden or relative name %q for %q", name, id)
		if prev, dup := seen[name]; dup {
			t.Fatalf("ids %q and %q share the name %q", prev, id, name)
		}
		seen[name] = id
	}
	require.Equal(t, []string{"out"}, dirEntries(t, root), "nothing written outside dir")
	require.Len(t, dirEntries(t, dir), len(seen))
}

func TestSaveResultFunc(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("video"), ""))
	c, _ := newDownloadClient(t, "")
	dir := t.TempDir()
	fn := c.SaveResultFunc(dir, WithAllowPrivateHosts())
	require.NoError(t, fn(context.Background(), &Result{TaskID: "bad", Code: 400, Message: "failed"}))
	require.Empty(t, dirEntries(t, dir))
	require.NoError(t, fn(context.Background(), savableResult("good", host.URL+"/v.mp4", "")))
	require.Equal(t, []string{"good.mp4"}, dirEntries(t, dir))
	require.Error(t, fn(context.Background(), &Result{TaskID: "novideo", Code: 200}))
}

func BenchmarkSaveResult(b *testing.B) {
	c, srv := benchFileServer(b)
	for i := 0; b.Loop(); i++ {
		r := savableResult("bench-"+strconv.Itoa(i), srv.URL+"/v.mp4", "")
		if _, err := c.SaveResult(context.Background(), r, b.TempDir(), WithAllowPrivateHosts()); err != nil {
			b.Fatal(err)
		}
	}
}
