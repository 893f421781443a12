//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package runway

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock(2) on f without waiting. flock locks belong to the open
// file, so a second open of the same path conflicts even within one process.
func lockFile(f *os.File, _ string) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrJournalLocked
	}
	return err
}

// unlockFile releases f's lock (closing f would too).
func unlockFile(f *os.File, _ string) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// moveLock follows a locked file renamed from one path to another: flock needs nothing.
func moveLock(_, _ string) {}
