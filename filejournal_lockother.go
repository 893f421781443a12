//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package runway

import (
	"os"
	"sync"
)

// Without flock, the lock only keeps a second FileJournal of this process off the file.
var (
	openJournalsMu sync.Mutex
	openJournals   = make(map[string]*os.File)
)

func lockFile(f *os.File, path string) error {
	openJournalsMu.Lock()
	defer openJournalsMu.Unlock()
	if _, ok := openJournals[path]; ok {
		return ErrJournalLocked
	}
	openJournals[path] = f
	return nil
}

func unlockFile(f *os.File, path string) {
	openJournalsMu.Lock()
	defer openJournalsMu.Unlock()
	if openJournals[path] == f {
		delete(openJournals, path)
	}
}

func moveLock(from, to string) {
	openJournalsMu.Lock()
	defer openJournalsMu.Unlock()
	openJournals[to] = openJournals[from]
	delete(openJournals, from)
}
