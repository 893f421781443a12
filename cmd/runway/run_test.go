package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// noLeaks checks, after every other cleanup of the test, that no goroutine outlived it.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// envMap turns pairs into the env lookup run takes.
func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// runIn runs the command in-process to completion.
func runIn(ctx context.Context, env func(string) string, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr, env)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// background runs the command in-process until ctx ends; its output streams can be awaited.
type background struct {
	stdout, stderr *stream
	done           chan int
}

func runInBackground(ctx context.Context, env func(string) string, args ...string) *background {
	or, ow := io.Pipe()
	er, ew := io.Pipe()
	b := &background{stdout: newStream(or), stderr: newStream(er), done: make(chan int, 1)}
	go func() {
		code := run(ctx, args, strings.NewReader(""), ow, ew, env)
		ow.Close()
		ew.Close()
		b.stdout.waitClosed()
		b.stderr.waitClosed()
		b.done <- code
	}()
	return b
}

func TestHelp(t *testing.T) {
	noLeaks(t)
	ctx := guard(t)
	r := runIn(ctx, envMap(), "", "--help")
	require.Equal(t, exitOK, r.code)
	for _, c := range commands {
		assert.Contains(t, r.stdout, "  "+c.name+" ")
	}
	assert.Contains(t, r.stdout, "Exit status:")
	assert.Contains(t, r.stdout, "Example:")

	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			r := runIn(ctx, envMap(), "", args...)
			require.Equal(t, exitOK, r.code, args)
			assert.Contains(t, r.stdout, "Usage: runway "+c.name)
			assert.Contains(t, r.stdout, "(default ", "flags with their defaults")
			assert.Contains(t, r.stdout, "Example:\n  runway ")
			assert.Empty(t, r.stderr)
		}
	}
	// The help never shows a secret from the environment as a default.
	r = runIn(ctx, envMap("KIE_API_KEY="+testKey, "KIE_WEBHOOK_HMAC_KEY=hmac-secret"), "", "listen", "--help")
	assert.NotContains(t, r.stdout, testKey)
	assert.NotContains(t, r.stdout, "hmac-secret")

	r = runIn(ctx, envMap(), "")
	require.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "Commands:")
}

func TestHelpMentionsPrivateHostsAndFake(t *testing.T) {
	ctx := guard(t)
	r := runIn(ctx, envMap(), "", "download", "--help")
	assert.Contains(t, r.stdout, "--allow-private-hosts")
	assert.Contains(t, r.stdout, "base URL is loopback")
	r = runIn(ctx, envMap(), "", "fake", "--help")
	assert.Contains(t, r.stdout, "first line on stdout is its base URL")
	assert.Contains(t, r.stdout, "any non-empty API key")
}

func TestParseFlagsAroundArguments(t *testing.T) {
	cases := []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"ID", "--json"}, []string{"ID"}, true},
		{[]string{"--json", "ID"}, []string{"ID"}, true},
		{[]string{"ID"}, []string{"ID"}, false},
		{[]string{"--json", "--", "--odd-id"}, []string{"--odd-id"}, true},
		{[]string{"--", "ID", "--json"}, []string{"ID", "--json"}, false},
	}
	for _, tc := range cases {
		f := newFlags(statusCmd)
		j := f.Bool("json", false, "")
		var stderr bytes.Buffer
		pos, code, ok := f.parse(&app{stderr: &stderr}, tc.args, 0, -1)
		require.True(t, ok, "%v: %s", tc.args, stderr.String())
		assert.Equal(t, exitOK, code)
		assert.Equal(t, tc.pos, pos, tc.args)
		assert.Equal(t, tc.json, *j, tc.args)
	}
	f := newFlags(statusCmd)
	var stderr bytes.Buffer
	_, code, ok := f.parse(&app{stderr: &stderr}, []string{"a", "b"}, 1, 1)
	assert.False(t, ok)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr.String(), `unexpected argument "b"`)
}

func TestProgressDisplay(t *testing.T) {
	var plain bytes.Buffer
	p := newProgress(&plain, false, "downloading")
	for _, done := range []int64{0, 100, 300, 500, 760, 999, 1000} {
		p.update(done, 1000)
	}
	p.finish()
	assert.Equal(t, "downloading: 30% (300 B of 1000 B)\ndownloading: 50% (500 B of 1000 B)\n"+
		"downloading: 76% (760 B of 1000 B)\n", plain.String())
	assert.NotContains(t, plain.String(), "\x1b")

	plain.Reset()
	p = newProgress(&plain, false, "downloading")
	p.update(1<<20, -1)
	p.update(9<<20, -1)
	p.update(10<<20, -1)
	assert.Equal(t, "downloading: 9.0 MiB\n", plain.String(), "unknown size: a line every 8 MiB")

	var bar bytes.Buffer
	p = newProgress(&bar, true, "downloading")
	p.update(500, 1000)
	p.update(501, 1000) // nothing visible changes: no redraw
	p.update(1000, 1000)
	p.finish()
	assert.Equal(t, "\rdownloading [###############---------------]  50% 500 B/1000 B\x1b[K"+
		"\rdownloading [##############################] 100% 1000 B/1000 B\x1b[K\n", bar.String())
}

func TestBarOnlyOnTerminalWithoutNoColor(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0) // a character device, like a terminal
	require.NoError(t, err)
	defer devNull.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer file.Close()

	assert.True(t, wantBar(devNull, envMap()))
	assert.False(t, wantBar(devNull, envMap("NO_COLOR=1")))
	assert.False(t, wantBar(devNull, envMap("TERM=dumb")))
	assert.False(t, wantBar(file, envMap()), "a file is not a terminal")
	assert.False(t, wantBar(&bytes.Buffer{}, envMap()))
}

// In-process: generate --wait --out against the fake, with a goroutine-leak check.
func TestRunGenerateWaitSave(t *testing.T) {
	noLeaks(t)
	srv := fakeKie(t)
	finishedAtOnce(srv, runwaytest.Success())
	dir := t.TempDir()
	r := runIn(guard(t), envMap("KIE_API_KEY="+testKey, "KIE_BASE_URL="+srv.URL), "",
		"generate", "--prompt", "a cat", "--wait", "--interval", "1s", "--out", dir, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	r.noSecrets(t)
	l := r.lines(t)[0]
	info, _ := srv.Task(l["task_id"].(string))
	requireSaved(t, srv, l["video_path"].(string), info.VideoURL)
	requireSaved(t, srv, l["image_path"].(string), info.ImageURL)
}

// In-process: cancelling the context (what Ctrl-C does) ends a wait with the resume hint.
func TestRunWaitCancelled(t *testing.T) {
	noLeaks(t)
	srv := fakeKie(t, runwaytest.WithManualSteps())
	id := submit(t, sdkClient(t, srv))
	ctx, cancel := context.WithCancel(guard(t))
	defer cancel()
	b := runInBackground(ctx, envMap("KIE_API_KEY="+testKey, "KIE_BASE_URL="+srv.URL), "wait", id)
	b.stderr.await(guard(t), t, "task "+id+": wait")
	cancel()
	require.Equal(t, exitInterrupted, <-b.done)
	assert.Contains(t, b.stderr.text(), "Resume with: runway wait "+id)
	assert.Empty(t, b.stdout.text())
}

// In-process: fake serves until cancelled; an SDK client with any key drives a task through
// it, and the callback it sends reaches listen, which saves the files and prints the line.
func TestRunFakeAndListen(t *testing.T) {
	noLeaks(t)
	ctx, cancel := context.WithCancel(guard(t))
	defer cancel()
	dir := t.TempDir()
	fake := runInBackground(ctx, envMap(), "fake", "--addr", "127.0.0.1:0", "--step", "1ms")
	base := fake.stdout.await(guard(t), t, "http://")

	listen := runInBackground(ctx, envMap("KIE_API_KEY=any-key", "KIE_BASE_URL="+base, "KIE_WEBHOOK_HMAC_KEY="+fakeHMACKey),
		"listen", "--addr", "127.0.0.1:0", "--out", dir)
	line := listen.stderr.await(guard(t), t, "listening for Kie callbacks on ")
	callbackURL := strings.Fields(strings.TrimPrefix(line, "listening for Kie callbacks on "))[0] + "kie"

	c, err := runway.NewClient("some-other-key", runway.WithBaseURL(base))
	require.NoError(t, err)
	defer c.Close()
	id, err := c.Generate(guard(t), runway.GenerateRequest{Prompt: "a cat", Duration: 5,
		Quality: runway.Quality720p, AspectRatio: runway.AspectRatio1x1, CallBackURL: callbackURL})
	require.NoError(t, err)
	got := listen.stdout.await(guard(t), t, id)
	assert.Equal(t, id+" success "+filepath.Join(dir, id+".mp4"), got, "plain: id, state, saved path")
	saved, err := runway.FindSavedFiles(dir, id)
	require.NoError(t, err)
	require.NotEmpty(t, saved.ImagePath, "the cover is saved beside the video")
	fi, err := os.Stat(saved.ImagePath)
	require.NoError(t, err)
	assert.Positive(t, fi.Size())

	cancel()
	assert.Equal(t, exitOK, <-listen.done)
	assert.Equal(t, exitOK, <-fake.done)
	assert.Contains(t, listen.stderr.text(), "signatures are required")
}

func TestLoopbackURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8089":   true,
		"http://localhost:8089":   true,
		"http://LOCALHOST":        true,
		"http://[::1]:8089":       true,
		"http://0.0.0.0:8089":     true,
		"https://api.kie.ai":      false,
		"http://10.0.0.5:8089":    false,
		"http://127.0.0.1.nip.io": false,
		"::not a url":             false,
	} {
		assert.Equal(t, want, loopbackURL(raw), raw)
	}
}
