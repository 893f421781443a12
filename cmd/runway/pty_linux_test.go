//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/b9c9aec2/runway-go/runwaytest"
)

// openPTY opens a pseudo-terminal pair with the standard library only: the command gets the
// terminal side as its stderr, the test reads what a screen would show from the other side.
func openPTY(t *testing.T) (master, term *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { term.Close() })
	return master, term
}

// downloadOnTerminal runs "runway download" with stderr on a terminal and returns what the
// terminal received.
func downloadOnTerminal(t *testing.T, srv *runwaytest.Server, id string, extraEnv ...string) (string, result) {
	t.Helper()
	master, term := openPTY(t)
	screen := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, master) // ends with EIO once the terminal side is closed
		screen <- b.Bytes()
	}()
	cmd := exec.CommandContext(guard(t), binary(t), "download", id, "--out", t.TempDir())
	cmd.Env = env(srv, extraEnv...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, term
	err := cmd.Run()
	require.NoError(t, err)
	term.Close()
	got := string(<-screen)
	t.Logf("terminal:\n%q", got)
	r := result{stdout: stdout.String(), stderr: got}
	r.noSecrets(t)
	return got, r
}

// On a terminal the download progress is a bar redrawn in place; NO_COLOR turns it off.
func TestProcessProgressBarOnTerminal(t *testing.T) {
	srv := fakeKie(t, runwaytest.WithFileSize(4<<20))
	finishedAtOnce(srv, runwaytest.Success())
	id := submit(t, sdkClient(t, srv))

	got, _ := downloadOnTerminal(t, srv, id)
	assert.Contains(t, got, "\rdownloading [")
	assert.Contains(t, got, "] 100% 5.0 MiB/5.0 MiB\x1b[K")
	assert.Contains(t, got, "saved video and cover")

	got, _ = downloadOnTerminal(t, srv, id, "NO_COLOR=1")
	assert.NotContains(t, got, "\x1b", "no control codes with NO_COLOR")
	assert.NotContains(t, got, "downloading [")
	assert.Contains(t, got, "saved video and cover")
}
