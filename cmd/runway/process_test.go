package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// fakeKie starts an in-test fake that accepts only testKey.
func fakeKie(t *testing.T, opts ...runwaytest.Option) *runwaytest.Server {
	t.Helper()
	srv := runwaytest.NewServer(append([]runwaytest.Option{runwaytest.WithAPIKey(testKey)}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// env is the environment pointing the command at srv.
func env(srv *runwaytest.Server, kv ...string) []string {
	return environ(append([]string{"KIE_API_KEY=" + testKey, "KIE_BASE_URL=" + srv.URL}, kv...)...)
}

// finishedAtOnce scripts the next task to be terminal before Generate returns, so the
// command's first poll sees the outcome.
func finishedAtOnce(srv *runwaytest.Server, o runwaytest.Outcome) {
	srv.ScriptNext(1, runwaytest.Script{Outcome: o, Callback: runwaytest.CallbackFaults{Early: true}})
}

var jsonKeys = []string{"task_id", "state", "video_url", "image_url", "error_kind", "message"}

func requireKeys(t *testing.T, line map[string]any) {
	t.Helper()
	for _, k := range jsonKeys {
		require.Contains(t, line, k)
	}
}

// requireSaved checks that path holds exactly the bytes the fake serves at fileURL.
func requireSaved(t *testing.T, srv *runwaytest.Server, path, fileURL string) {
	t.Helper()
	want, ok := srv.FileBytes(fileURL)
	require.True(t, ok, fileURL)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "%s differs from %s", path, fileURL)
}

// noTempFiles checks that dir holds no hidden partial download.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasPrefix(e.Name(), "."), "partial file left: %s", e.Name())
	}
}

func TestProcessGenerateWaitOutJSON(t *testing.T) {
	srv := fakeKie(t)
	finishedAtOnce(srv, runwaytest.Success())
	dir := filepath.Join(t.TempDir(), "videos")
	r := runProc(t, env(srv), "", "generate", "--prompt", "a cat", "--ratio", "9:16", "--wait", "--interval", "1s", "--out", dir, "--json")
	require.Equal(t, exitOK, r.code)
	lines := r.lines(t)
	require.Len(t, lines, 1, "one JSON line per task")
	l := lines[0]
	requireKeys(t, l)
	id := l["task_id"].(string)
	info, ok := srv.Task(id)
	require.True(t, ok)
	assert.Equal(t, "success", l["state"])
	assert.Equal(t, "", l["error_kind"])
	assert.Equal(t, info.VideoURL, l["video_url"])
	assert.Equal(t, info.ImageURL, l["image_url"])
	requireSaved(t, srv, l["video_path"].(string), info.VideoURL)
	requireSaved(t, srv, l["image_path"].(string), info.ImageURL)
	assert.Equal(t, dir, filepath.Dir(l["video_path"].(string)))
	noTempFiles(t, dir)
	assert.Equal(t, "a cat", info.Prompt)

	assert.Contains(t, r.stderr, "task "+id+": submitted")
	assert.Contains(t, r.stderr, "task "+id+": success")
	assert.Contains(t, r.stderr, "task "+id+": saved video and cover into "+dir)
	assert.NotContains(t, r.stderr, "\x1b", "no control codes when stderr is not a terminal")
}

func TestProcessGenerateSubmitOnly(t *testing.T) {
	srv := fakeKie(t)
	// Plain: stdout is the id alone, ready for $(runway generate ...); the prompt from stdin.
	r := runProc(t, env(srv), "a dog on a skateboard\n", "generate", "--prompt", "-", "--duration", "10")
	require.Equal(t, exitOK, r.code)
	id := strings.TrimSpace(r.stdout)
	info, ok := srv.Task(id)
	require.True(t, ok, "stdout %q is the task id", r.stdout)
	assert.Equal(t, "a dog on a skateboard", info.Prompt)
	assert.Contains(t, r.stderr, "runway wait "+id)
	reqs, err := srv.WaitRequests(guard(t), runwaytest.PathGenerate, 1)
	require.NoError(t, err)
	assert.Equal(t, "16:9", reqs[0].Body["aspectRatio"], "the default ratio without --image")

	// --json: one line, state "submitted".
	r = runProc(t, env(srv), "", "generate", "--json", "--prompt", "a bird", "--callback-url", "https://example.com/cb")
	require.Equal(t, exitOK, r.code)
	lines := r.lines(t)
	require.Len(t, lines, 1)
	requireKeys(t, lines[0])
	assert.Equal(t, stateSubmitted, lines[0]["state"])
	info, ok = srv.Task(lines[0]["task_id"].(string))
	require.True(t, ok)
	assert.Equal(t, "https://example.com/cb", info.CallbackURL)
}

func TestProcessExtend(t *testing.T) {
	srv := fakeKie(t)
	finishedAtOnce(srv, runwaytest.Success())
	r := runProc(t, env(srv), "", "generate", "--prompt", "a cat", "--json")
	require.Equal(t, exitOK, r.code)
	parent := r.lines(t)[0]["task_id"].(string)
	_, err := srv.WaitTerminal(guard(t), parent)
	require.NoError(t, err)

	finishedAtOnce(srv, runwaytest.Success())
	r = runProc(t, env(srv), "", "extend", "--task", parent, "--prompt", "the cat bows", "--wait", "--interval", "1s", "--json")
	require.Equal(t, exitOK, r.code)
	l := r.lines(t)[0]
	requireKeys(t, l)
	info, ok := srv.Task(l["task_id"].(string))
	require.True(t, ok)
	assert.Equal(t, runwaytest.KindExtend, info.Kind)
	assert.Equal(t, parent, info.ParentID)
	assert.Equal(t, "success", l["state"])

	// The id may also be the argument, before or after the flags.
	r = runProc(t, env(srv), "", "extend", parent, "--prompt", "again")
	require.Equal(t, exitOK, r.code)
	info, ok = srv.Task(strings.TrimSpace(r.stdout))
	require.True(t, ok)
	assert.Equal(t, parent, info.ParentID)
}

func TestProcessStatus(t *testing.T) {
	srv := fakeKie(t, runwaytest.WithManualSteps())
	c := sdkClient(t, srv)
	id := submit(t, c)

	r := runProc(t, env(srv), "", "status", id)
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, "wait\n", r.stdout)

	_, err := srv.Finish(id)
	require.NoError(t, err)
	for _, args := range [][]string{{"status", id, "--json"}, {"status", "--json", id}} {
		r = runProc(t, env(srv), "", args...)
		require.Equal(t, exitOK, r.code)
		l := r.lines(t)[0]
		requireKeys(t, l)
		assert.Equal(t, id, l["task_id"])
		assert.Equal(t, "success", l["state"])
		assert.NotEmpty(t, l["video_url"])
	}

	// A failed task: class and Kie's message, exit 3.
	srv.ScriptNext(1, runwaytest.Script{Outcome: runwaytest.FailModeration()})
	failed := submit(t, c)
	_, err = srv.Finish(failed)
	require.NoError(t, err)
	r = runProc(t, env(srv), "", "status", failed, "--json")
	require.Equal(t, exitTaskFailed, r.code)
	l := r.lines(t)[0]
	assert.Equal(t, "fail", l["state"])
	assert.Equal(t, "moderation", l["error_kind"])
	assert.Equal(t, runwaytest.FailModeration().Message, l["message"])
	assert.Contains(t, r.stderr, runwaytest.FailModeration().Message)

	// An unknown id: exit 1 and what to check.
	r = runProc(t, env(srv), "", "status", "no-such-task")
	require.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "check the id")
}

func TestProcessWaitAndDownload(t *testing.T) {
	srv := fakeKie(t)
	finishedAtOnce(srv, runwaytest.Success())
	id := submit(t, sdkClient(t, srv))

	// Flags after the id, and before it.
	r := runProc(t, env(srv), "", "wait", id, "--json", "--interval", "1s")
	require.Equal(t, exitOK, r.code)
	l := r.lines(t)[0]
	requireKeys(t, l)
	assert.Equal(t, "success", l["state"])
	r = runProc(t, env(srv), "", "wait", "--interval", "1s", id)
	require.Equal(t, exitOK, r.code)
	info, _ := srv.Task(id)
	assert.Equal(t, info.VideoURL+"\n", r.stdout, "plain wait prints the video URL")

	dir := t.TempDir()
	r = runProc(t, env(srv), "", "download", id, "--out", dir, "--json")
	require.Equal(t, exitOK, r.code)
	l = r.lines(t)[0]
	requireKeys(t, l)
	requireSaved(t, srv, l["video_path"].(string), info.VideoURL)
	requireSaved(t, srv, l["image_path"].(string), info.ImageURL)
	noTempFiles(t, dir)
	assert.Contains(t, r.stderr, "task "+id+": saved video and cover into "+dir)

	// Plain download prints the video's path; a second run finds the files in place.
	r = runProc(t, env(srv), "", "download", "--out", dir, id)
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, l["video_path"].(string)+"\n", r.stdout)
	assert.Contains(t, r.stderr, "saved video and cover into "+dir+" (80.0 KiB)", "the size of the files in place")
}

func TestProcessDownloadUnfinished(t *testing.T) {
	srv := fakeKie(t, runwaytest.WithManualSteps())
	id := submit(t, sdkClient(t, srv))
	dir := filepath.Join(t.TempDir(), "out")
	r := runProc(t, env(srv), "", "download", id, "--out", dir)
	require.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "runway wait "+id+" --out "+dir)
	_, err := os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "nothing written")
}

func TestProcessCredits(t *testing.T) {
	srv := fakeKie(t)
	srv.SetCredits(4321)
	r := runProc(t, env(srv), "", "credits")
	require.Equal(t, exitOK, r.code)
	assert.Equal(t, "4321\n", r.stdout)
	r = runProc(t, env(srv), "", "credits", "--json")
	require.Equal(t, exitOK, r.code)
	assert.JSONEq(t, `{"credits": 4321}`, r.stdout)
}

// Every exit status, each with the advice it prints.
func TestProcessExitStatuses(t *testing.T) {
	srv := fakeKie(t)
	t.Run("2 missing key", func(t *testing.T) {
		r := runProc(t, environ("KIE_BASE_URL="+srv.URL), "", "generate", "--prompt", "a cat")
		require.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "KIE_API_KEY is not set")
		assert.Contains(t, r.stderr, "export KIE_API_KEY=")
	})
	t.Run("2 unknown flag", func(t *testing.T) {
		r := runProc(t, env(srv), "", "wait", "abc", "--colour")
		require.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "flag provided but not defined: -colour")
		assert.Contains(t, r.stderr, "runway wait --help")
	})
	t.Run("2 unknown command", func(t *testing.T) {
		r := runProc(t, env(srv), "", "generat")
		require.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "runway --help")
	})
	t.Run("2 validation", func(t *testing.T) {
		r := runProc(t, env(srv), "", "generate", "--prompt", "a cat", "--duration", "10", "--quality", "1080p")
		require.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "--quality 1080p is only available with Duration 5; nothing was sent")
		r = runProc(t, env(srv), "", "wait", "abc", "--timeout", "-1s")
		require.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "--timeout must not be negative")
	})
	require.Empty(t, srv.Requests(), "usage errors send nothing")

	t.Run("1 API error", func(t *testing.T) {
		r := runProc(t, environ("KIE_API_KEY=sk-wrong", "KIE_BASE_URL="+srv.URL), "", "credits")
		require.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "check KIE_API_KEY")
		assert.NotContains(t, r.stdout+r.stderr, "sk-wrong")
	})
	t.Run("3 failed task", func(t *testing.T) {
		finishedAtOnce(srv, runwaytest.FailQuota())
		r := runProc(t, env(srv), "", "generate", "--prompt", "a cat", "--wait", "--interval", "1s", "--json")
		require.Equal(t, exitTaskFailed, r.code)
		l := r.lines(t)[0]
		requireKeys(t, l)
		assert.Equal(t, "fail", l["state"])
		assert.Equal(t, "quota", l["error_kind"])
		assert.Equal(t, runwaytest.FailQuota().Message, l["message"])
		assert.Contains(t, r.stderr, "failed (quota, code 400): "+runwaytest.FailQuota().Message)
	})
	t.Run("4 timeout", func(t *testing.T) {
		manual := fakeKie(t, runwaytest.WithManualSteps())
		id := submit(t, sdkClient(t, manual))
		r := runProc(t, env(manual), "", "wait", id, "--timeout", "1s", "--json") // room for the first poll on a loaded machine
		require.Equal(t, exitTimeout, r.code)
		l := r.lines(t)[0]
		requireKeys(t, l)
		assert.Equal(t, "wait", l["state"])
		assert.Equal(t, kindTimeout, l["error_kind"])
		assert.Contains(t, r.stderr, "last state: wait")
		assert.Contains(t, r.stderr, "Resume with: runway wait "+id)
	})
}

// Ctrl-C during wait stops at once, says how to resume, and exits 130.
func TestProcessSIGINTDuringWait(t *testing.T) {
	srv := fakeKie(t, runwaytest.WithManualSteps())
	id := submit(t, sdkClient(t, srv))
	p := startProc(t, env(srv), "wait", id, "--json")
	p.stderr.await(guard(t), t, "task "+id+": wait")
	r := p.signal(guard(t), os.Interrupt)
	require.Equal(t, exitInterrupted, r.code)
	assert.Contains(t, r.stderr, "Resume with: runway wait "+id)
	l := r.lines(t)[0]
	assert.Equal(t, kindInterrupted, l["error_kind"])
	assert.Equal(t, id, l["task_id"])
}

// Ctrl-C during a download leaves no partial file.
func TestProcessSIGINTDuringDownload(t *testing.T) {
	started := make(chan struct{})
	var api *http.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/runway/record-detail", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		base := "http://" + r.Host
		_, _ = w.Write([]byte(`{"code":200,"msg":"success","data":{"taskId":"slow-1","state":"success",` +
			`"videoInfo":{"videoId":"v1","taskId":"slow-1","videoUrl":"` + base + `/files/slow.mp4","imageUrl":""},` +
			`"failCode":0,"failMsg":"","expireFlag":0}}`))
	})
	mux.HandleFunc("GET /files/slow.mp4", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", "1048576")
		_, _ = w.Write(make([]byte, 64<<10))
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done() // the rest never comes
	})
	api = &http.Server{Handler: mux}
	ln := listenLoopback(t)
	go func() { _ = api.Serve(ln) }()
	t.Cleanup(func() { _ = api.Close() })

	dir := t.TempDir()
	p := startProc(t, environ("KIE_API_KEY="+testKey, "KIE_BASE_URL=http://"+ln.Addr().String()), "download", "slow-1", "--out", dir)
	select {
	case <-started:
	case <-guard(t).Done():
		t.Fatal("the download never started")
	}
	// The temporary file exists while the download runs.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.True(t, strings.HasSuffix(entries[0].Name(), ".part"), entries[0].Name())

	r := p.signal(guard(t), os.Interrupt)
	require.Equal(t, exitInterrupted, r.code)
	assert.Contains(t, r.stderr, "no partial file was left")
	assert.Contains(t, r.stderr, "runway download slow-1 --out "+dir)
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no partial file")
}

// listen verifies signed callbacks and prints one line per result.
func TestProcessListenSignedCallback(t *testing.T) {
	srv := fakeKie(t)
	const hmacKey = "whk-test-never-printed"
	p := startProc(t, env(srv, "KIE_WEBHOOK_HMAC_KEY="+hmacKey), "listen", "--addr", "127.0.0.1:0", "--json")
	line := p.stderr.await(guard(t), t, "listening for Kie callbacks on ")
	url := strings.Fields(strings.TrimPrefix(line, "listening for Kie callbacks on "))[0] + "kie/callback"

	body := `{"code":200,"msg":"All generated successfully.","data":{"task_id":"cb-task-1","video_id":"v1",` +
		`"video_url":"https://files.example/cb-task-1.mp4","image_url":"https://files.example/cb-task-1.jpg"}}`
	post := func(key string) int {
		ts, sig := runway.SignCallback(key, "cb-task-1", time.Now())
		req, err := http.NewRequestWithContext(guard(t), http.MethodPost, url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(runway.HeaderWebhookTimestamp, ts)
		req.Header.Set(runway.HeaderWebhookSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post("another-key"), "a wrong signature is refused")
	require.Equal(t, http.StatusOK, post(hmacKey))
	p.stdout.await(guard(t), t, "cb-task-1")

	r := p.signal(guard(t), os.Interrupt)
	require.Equal(t, exitOK, r.code)
	lines := r.lines(t)
	require.Len(t, lines, 1, "the refused callback printed nothing")
	requireKeys(t, lines[0])
	assert.Equal(t, "cb-task-1", lines[0]["task_id"])
	assert.Equal(t, "success", lines[0]["state"])
	assert.Equal(t, "https://files.example/cb-task-1.mp4", lines[0]["video_url"])
	assert.NotContains(t, r.stdout+r.stderr, hmacKey)
}

// runway fake as a process, driven by other runway processes: generate --wait --out
// finishes with the files saved, and listen receives the fake's signed callback and saves too.
func TestProcessFakeDrivenByCommands(t *testing.T) {
	fake := startProc(t, environ(), "fake", "--addr", "127.0.0.1:0", "--step", "50ms")
	base := fake.stdout.await(guard(t), t, "http://")
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), "first stdout line is the base URL: %q", base)

	// Any non-empty key works against the fake.
	procEnv := environ("KIE_API_KEY="+testKey, "KIE_BASE_URL="+base)
	listenDir := filepath.Join(t.TempDir(), "listened")
	listen := startProc(t, procEnv, "listen", "--addr", "127.0.0.1:0", "--hmac-key", fakeHMACKey, "--out", listenDir, "--json")
	line := listen.stderr.await(guard(t), t, "listening for Kie callbacks on ")
	callbackURL := strings.Fields(strings.TrimPrefix(line, "listening for Kie callbacks on "))[0] + "callback"

	dir := filepath.Join(t.TempDir(), "videos")
	r := runProc(t, procEnv, "", "generate", "--prompt", "a cat", "--callback-url", callbackURL,
		"--wait", "--interval", "1s", "--out", dir, "--json")
	require.Equal(t, exitOK, r.code)
	l := r.lines(t)[0]
	requireKeys(t, l)
	id := l["task_id"].(string)
	assert.Equal(t, "success", l["state"])
	for _, k := range []string{"video_path", "image_path"} {
		fi, err := os.Stat(l[k].(string))
		require.NoError(t, err)
		assert.Positive(t, fi.Size())
	}
	assert.Contains(t, r.stderr, "task "+id+": success")

	// The fake signed its callback with the key listen requires; listen saved the same files.
	listen.stdout.await(guard(t), t, id)
	lr := listen.signal(guard(t), os.Interrupt)
	require.Equal(t, exitOK, lr.code)
	ll := lr.lines(t)[0]
	assert.Equal(t, id, ll["task_id"])
	for _, k := range []string{"video_path", "image_path"} {
		want, err := os.ReadFile(l[k].(string))
		require.NoError(t, err)
		got, err := os.ReadFile(ll[k].(string))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), k)
	}

	// Scripted prompts: a failure of one class (exit 3) and a task that never ends (exit 4).
	r = runProc(t, procEnv, "", "generate", "--prompt", "fail:moderation", "--wait", "--interval", "1s", "--json")
	require.Equal(t, exitTaskFailed, r.code)
	assert.Equal(t, "moderation", r.lines(t)[0]["error_kind"])
	assert.Contains(t, r.stderr, runwaytest.FailModeration().Message)
	r = runProc(t, procEnv, "", "generate", "--prompt", "stuck", "--wait", "--timeout", "200ms")
	require.Equal(t, exitTimeout, r.code)
	assert.Contains(t, r.stderr, "Resume with: runway wait "+strings.TrimSpace(r.stdout))

	fr := fake.signal(guard(t), os.Interrupt)
	require.Equal(t, exitOK, fr.code)
	assert.Contains(t, fr.stderr, "any non-empty API key works")
}

// sdkClient is an SDK client for setting up tasks directly.
func sdkClient(t *testing.T, srv *runwaytest.Server) *runway.Client {
	t.Helper()
	c, err := runway.NewClient(testKey, runway.WithBaseURL(srv.URL), runway.WithSubmitRateLimit(0, 0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func submit(t *testing.T, c *runway.Client) string {
	t.Helper()
	id, err := c.Generate(context.Background(), runway.GenerateRequest{
		Prompt: "a cat", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
	})
	require.NoError(t, err)
	return id
}
