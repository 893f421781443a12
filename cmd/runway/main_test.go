package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKey is the API key every test uses; no output may ever contain it.
const testKey = "sk-test-7f3a9c-must-never-be-printed"

var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the command once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binError = os.MkdirTemp("", "runway-cli-test-")
		if binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "runway")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binError)
	return binPath
}

// guard bounds a test that would otherwise hang on a broken command; it is not a wait.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// environ builds a process environment from scratch, so the developer's own KIE_API_KEY
// never leaks into a test.
func environ(kv ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, kv...)
}

// result is a finished process.
type result struct {
	code           int
	stdout, stderr string
}

// noSecrets checks that the API key appears in no output.
func (r result) noSecrets(t *testing.T) {
	t.Helper()
	assert.NotContains(t, r.stdout, testKey, "the API key must never be printed")
	assert.NotContains(t, r.stderr, testKey, "the API key must never be printed")
}

// lines returns stdout's JSON lines, decoded; every line must be one JSON object.
func (r result) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "stdout line %q is not JSON", l)
		out = append(out, m)
	}
	return out
}

// runProc runs the binary to completion with env and stdin.
func runProc(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(guard(t), binary(t), args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("runway %s -> %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	r.noSecrets(t)
	return r
}

// proc is a running command whose output lines can be awaited.
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *stream
	done           chan struct{}
	res            result
}

// stream collects a pipe's lines and lets a test wait for one.
type stream struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
	closed  bool
}

func newStream(r io.Reader) *stream {
	s := &stream{changed: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.closed = true
		close(s.changed)
		s.mu.Unlock()
	}()
	return s
}

// await returns the first line that contains substr, waiting for it to be printed.
func (s *stream) await(ctx context.Context, t *testing.T, substr string) string {
	t.Helper()
	for {
		s.mu.Lock()
		for _, l := range s.lines {
			if strings.Contains(l, substr) {
				s.mu.Unlock()
				return l
			}
		}
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if closed {
			t.Fatalf("output ended without a line containing %q", substr)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("no line containing %q: %v", substr, ctx.Err())
		}
	}
}

func (s *stream) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lines) == 0 {
		return ""
	}
	return strings.Join(s.lines, "\n") + "\n"
}

// startProc starts the binary in the background; stop or wait ends it.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	outPipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	errPipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{t: t, cmd: cmd, stdout: newStream(outPipe), stderr: newStream(errPipe), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// Read the pipes to their end before Wait closes them.
		p.stdout.waitClosed()
		p.stderr.waitClosed()
		err := cmd.Wait()
		p.res.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.res.code = ee.ExitCode()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (s *stream) waitClosed() {
	for {
		s.mu.Lock()
		closed, ch := s.closed, s.changed
		s.mu.Unlock()
		if closed {
			return
		}
		<-ch
	}
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(ctx context.Context, sig os.Signal) result {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
	return p.wait(ctx)
}

// wait waits for the process to exit by itself.
func (p *proc) wait(ctx context.Context) result {
	p.t.Helper()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.t.Fatalf("%s did not exit: %v", strings.Join(p.cmd.Args, " "), ctx.Err())
	}
	p.res.stdout, p.res.stderr = p.stdout.text(), p.stderr.text()
	p.t.Logf("%s -> %d\nstdout:\n%sstderr:\n%s", strings.Join(p.cmd.Args, " "), p.res.code, p.res.stdout, p.res.stderr)
	p.res.noSecrets(p.t)
	return p.res
}

// listenLoopback opens a listener on a free loopback port, closed at the end of the test.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}
