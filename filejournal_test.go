package runway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func openTestJournal(t *testing.T, path string) *FileJournal {
	t.Helper()
	j, err := NewFileJournal(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func pendingIDs(t *testing.T, j Journal) map[string]JournalEntry {
	t.Helper()
	es, err := j.Pending(context.Background())
	require.NoError(t, err)
	m := make(map[string]JournalEntry, len(es))
	for _, e := range es {
		m[e.TaskID] = e
	}
	return m
}

// TestFileJournalPersists: entries added (with Meta and Aleph) and not removed are there
// after a reopen, the file is 0600, and removing an absent id is a no-op.
func TestFileJournalPersists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	j, err := NewFileJournal(path)
	require.NoError(t, err)
	at := time.Unix(1769670760, 0).UTC()
	require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t1", SubmittedAt: at, Meta: map[string]string{"order": "42"}}))
	require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t2", Aleph: true, SubmittedAt: at}))
	require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t3", SubmittedAt: at}))
	require.NoError(t, j.Remove(ctx, "t3"))
	require.NoError(t, j.Remove(ctx, "never-added"))
	e, err := j.Entry(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, "42", e.Meta["order"])
	require.NoError(t, j.Close())
	require.NoError(t, j.Close(), "Close twice")
	require.Error(t, j.Add(ctx, JournalEntry{TaskID: "t4"}), "Add after Close")

	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	got := pendingIDs(t, openTestJournal(t, path))
	require.Len(t, got, 2)
	require.Equal(t, JournalEntry{TaskID: "t1", SubmittedAt: at, Meta: map[string]string{"order": "42"}}, got["t1"])
	require.Equal(t, JournalEntry{TaskID: "t2", Aleph: true, SubmittedAt: at}, got["t2"])
}

// TestFileJournalTornRecord: garbage or a half-written record at the end (a crash mid-write)
// is dropped on open, and records written afterwards survive the next reopen.
func TestFileJournalTornRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, tail := range map[string]func(full []byte) []byte{
		"half header":    func([]byte) []byte { return []byte{7, 0} },
		"half record":    func(full []byte) []byte { return full[:len(full)-3] },
		"bad checksum":   func(full []byte) []byte { b := append([]byte(nil), full...); b[len(b)-1] ^= 0xff; return b },
		"zero length":    func([]byte) []byte { return make([]byte, 16) },
		"huge length":    func([]byte) []byte { return []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0} },
		"unknown opcode": func(full []byte) []byte { return (&FileJournal{}).record('x', []byte("t9")) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "journal")
			j, err := NewFileJournal(path)
			require.NoError(t, err)
			require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t1"}))
			require.NoError(t, j.Close())
			good, err := os.ReadFile(path)
			require.NoError(t, err)
			full := (&FileJournal{}).record(opAdd, []byte(`{"id":"t2"}`))
			require.NoError(t, os.WriteFile(path, append(good, tail(full)...), 0o600))

			j, err = NewFileJournal(path)
			require.NoError(t, err, "a torn tail is never a failed start")
			require.Equal(t, []string{"t1"}, keys(pendingIDs(t, j)))
			require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t3"}))
			require.NoError(t, j.Close())
			require.ElementsMatch(t, []string{"t1", "t3"}, keys(pendingIDs(t, openTestJournal(t, path))))
		})
	}
}

func keys(m map[string]JournalEntry) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFileJournalLocked: a second open of the same path fails clearly until the first is
// closed, also after a compaction replaced the file.
func TestFileJournalLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	j, err := NewFileJournal(path)
	require.NoError(t, err)
	_, err = NewFileJournal(path)
	require.ErrorIs(t, err, ErrJournalLocked)
	require.Contains(t, err.Error(), path)

	j.slack = 4
	for i := range 50 {
		id := fmt.Sprintf("t%d", i)
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: id}))
		require.NoError(t, j.Remove(ctx, id))
	}
	_, err = NewFileJournal(path)
	require.ErrorIs(t, err, ErrJournalLocked, "the lock moved to the compacted file")

	require.NoError(t, j.Close())
	openTestJournal(t, path)
}

// TestFileJournalCompacts: the file stays proportional to the pending entries as they are
// removed, and what is pending survives the rewrites.
func TestFileJournalCompacts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal")
	j, err := NewFileJournal(path)
	require.NoError(t, err)
	j.slack = 16
	for i := range 2000 {
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: fmt.Sprintf("t%d", i), Meta: map[string]string{"i": fmt.Sprint(i)}}))
		if i%10 != 0 {
			require.NoError(t, j.Remove(ctx, fmt.Sprintf("t%d", i)))
		}
	}
	fi, err := os.Stat(path)
	require.NoError(t, err)
	one := int64(len((&FileJournal{}).record(opAdd, []byte(`{"id":"t1000","at":"0001-01-01T00:00:00Z","meta":{"i":"1000"}}`))))
	require.LessOrEqual(t, fi.Size(), (3*200+16+2)*one, "file of %d bytes for 200 pending", fi.Size())
	require.NoError(t, j.Close())
	got := pendingIDs(t, openTestJournal(t, path))
	require.Len(t, got, 200)
	require.Equal(t, "1990", got["t1990"].Meta["i"])
}

// childJournalEnv names the journal file a re-executed test binary writes to.
const childJournalEnv = "RUNWAY_TEST_JOURNAL_CHILD"

// TestFileJournalSurvivesSIGKILL re-executes the test binary as a child that adds entries
// to a journal in a loop (and removes older ones, so compactions happen too), reporting on
// stdout each Add that returned and each Remove before and after it runs. The parent kills
// it with SIGKILL mid-stream, reopens the journal and checks that every entry whose Add
// returned is there unless its Remove started, and that no entry whose Remove returned is.
func TestFileJournalSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv(childJournalEnv); path != "" {
		journalChild(path)
		return
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("needs SIGKILL")
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "journal")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileJournalSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), childJournalEnv+"="+path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())

	added, removing, removed := map[string]bool{}, map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		op, id, _ := strings.Cut(sc.Text(), " ")
		switch op {
		case "added":
			added[id] = true
		case "removing":
			removing[id] = true
		case "removed":
			removed[id] = true
		}
		// Well past several compactions (the child's slack is small), then at once.
		if !killed && len(added) == 1500 {
			require.NoError(t, cmd.Process.Kill())
			killed = true
		}
	}
	require.True(t, killed, "the child ended before it was killed")
	require.Error(t, cmd.Wait(), "the child died of SIGKILL")

	got := pendingIDs(t, openTestJournal(t, path))
	for id := range added {
		switch {
		case removed[id]:
			require.NotContains(t, got, id, "removed before the kill")
		case !removing[id]:
			require.Contains(t, got, id, "added before the kill")
		}
	}
	// An Add that returned just before the kill, unreported, may be there too: the next id.
	next := fmt.Sprintf("task-%06d", len(added))
	for id := range got {
		require.True(t, added[id] || id == next, "entry %s was never added", id)
	}
}

// journalChild is the child side of TestFileJournalSurvivesSIGKILL: it journals until killed.
func journalChild(path string) {
	ctx := context.Background()
	j, err := NewFileJournal(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	j.slack = 8
	meta := map[string]string{"order": strings.Repeat("x", 100)}
	for i := 0; ; i++ {
		id := fmt.Sprintf("task-%06d", i)
		if err := j.Add(ctx, JournalEntry{TaskID: id, SubmittedAt: time.Now(), Meta: meta}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stdout, "added", id)
		if i%3 == 0 && i >= 6 {
			old := fmt.Sprintf("task-%06d", i-6)
			fmt.Fprintln(os.Stdout, "removing", old)
			if err := j.Remove(ctx, old); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			fmt.Fprintln(os.Stdout, "removed", old)
		}
	}
}

// FuzzFileJournalOpen: whatever bytes the file holds (a crash, a disk error, another
// program), opening it never fails or panics, keeps only entries with an id, and the journal
// works afterwards: an entry added then survives a reopen.
func FuzzFileJournalOpen(f *testing.F) {
	ctx := context.Background()
	var valid []byte
	for _, rec := range [][]byte{
		(&FileJournal{}).record(opAdd, []byte(`{"id":"t1","aleph":true,"at":"2026-01-29T07:12:40Z","meta":{"k":"v"}}`)),
		(&FileJournal{}).record(opAdd, []byte(`{"id":"t2"}`)),
		(&FileJournal{}).record(opRemove, []byte(`t1`)),
	} {
		valid = append(valid, rec...)
		f.Add(append([]byte(nil), valid...))
	}
	f.Add(valid[:len(valid)-2])
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "journal")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		j, err := NewFileJournal(path)
		require.NoError(t, err)
		es, err := j.Pending(ctx)
		require.NoError(t, err)
		for _, e := range es {
			require.NotEmpty(t, e.TaskID)
		}
		require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "fuzz-added"}))
		require.NoError(t, j.Close())
		j, err = NewFileJournal(path)
		require.NoError(t, err)
		defer j.Close()
		e, err := j.Entry(ctx, "fuzz-added")
		require.NoError(t, err)
		require.NotNil(t, e)
		again, err := j.Pending(ctx)
		require.NoError(t, err)
		require.Len(t, again, len(es)+1-countID(es, "fuzz-added"))
	})
}

func countID(es []JournalEntry, id string) int {
	n := 0
	for _, e := range es {
		if e.TaskID == id {
			n++
		}
	}
	return n
}

// syncRecorder stands in for the directory fsync: it records the directories synced and fails
// while fail is set.
type syncRecorder struct {
	mu   sync.Mutex
	dirs []string
	fail bool
}

func (s *syncRecorder) sync(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirs = append(s.dirs, dir)
	if s.fail {
		return errors.New("injected EIO")
	}
	return nil
}

func (s *syncRecorder) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirs)
}

func (s *syncRecorder) setFail(v bool) {
	s.mu.Lock()
	s.fail = v
	s.mu.Unlock()
}

// TestFileJournalSyncsDirOnCreate: opening (creating) the file fsyncs its directory, and an
// open whose directory fsync fails is an error: the file might not survive a crash.
func TestFileJournalSyncsDirOnCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := &syncRecorder{}
	j, err := newFileJournal(filepath.Join(dir, "journal"), fileJournalDeps{syncDir: rec.sync})
	require.NoError(t, err)
	require.NoError(t, j.Close())
	require.Equal(t, []string{dir}, rec.dirs)

	rec.setFail(true)
	_, err = newFileJournal(filepath.Join(dir, "other"), fileJournalDeps{syncDir: rec.sync})
	require.ErrorContains(t, err, "fsync directory")
}

// TestFileJournalCompactionDirSyncFailure: when the directory cannot be fsynced after a
// compaction's rename, it is logged, and the next write syncs it again and fails until it
// succeeds; a compaction that cannot even start is logged too.
func TestFileJournalCompactionDirSyncFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs logBuffer
	rec := &syncRecorder{}
	path := filepath.Join(t.TempDir(), "journal")
	j, err := newFileJournal(path, fileJournalDeps{log: logs.logger(), syncDir: rec.sync})
	require.NoError(t, err)
	defer j.Close()
	j.slack = 0
	require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t1"}))
	require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t2"}))
	rec.setFail(true)
	require.NoError(t, j.Remove(ctx, "t1"), "3 records for 1 entry: compacts; the removal itself is durable")
	require.Contains(t, logs.String(), "directory fsync failed after rewriting")
	n := rec.calls()
	require.ErrorContains(t, j.Add(ctx, JournalEntry{TaskID: "t3"}), "fsync directory")
	require.Equal(t, n+1, rec.calls(), "the write retried the directory fsync")
	rec.setFail(false)
	require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t4"}))
	n = rec.calls()
	require.NoError(t, j.Add(ctx, JournalEntry{TaskID: "t5"}))
	require.Equal(t, n, rec.calls(), "synced: no more directory fsyncs per write")

	// A compaction that cannot create its file is logged, and the journal goes on.
	require.NoError(t, os.Mkdir(j.tmpPath(), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(j.tmpPath(), "x"), nil, 0o600))
	for _, id := range []string{"t2", "t3", "t4"} {
		require.NoError(t, j.Remove(ctx, id))
	}
	require.Contains(t, logs.String(), "journal compaction failed")
	require.NoError(t, j.Close())
	require.NoError(t, os.RemoveAll(j.tmpPath()))
	require.Equal(t, []string{"t5"}, keys(pendingIDs(t, openTestJournal(t, path))))
}

// TestFileJournalCorruptMiddle: damage followed by valid records keeps the entries on both
// sides, sets the damaged file aside (byte for byte) and logs the bytes dropped; damage at
// the end only (a torn write) is cut off and logged, with no file set aside.
func TestFileJournalCorruptMiddle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "journal")
	fj := &FileJournal{}
	var data []byte
	data = append(data, fj.record(opAdd, []byte(`{"id":"before"}`))...)
	data = append(data, fj.record(opAdd, []byte(`{"id":"gone"}`))...)
	data = append(data, []byte("garbage!!")...)
	data = append(data, fj.record(opRemove, []byte("gone"))...)
	data = append(data, fj.record(opAdd, []byte(`{"id":"after","meta":{"k":"v"}}`))...)
	require.NoError(t, os.WriteFile(path, data, 0o600))

	var logs logBuffer
	j, err := newFileJournal(path, fileJournalDeps{log: logs.logger()})
	require.NoError(t, err)
	got := pendingIDs(t, j)
	require.ElementsMatch(t, []string{"before", "after"}, keys(got))
	require.Equal(t, "v", got["after"].Meta["k"])
	require.Contains(t, logs.String(), "corrupt records between valid ones")
	require.Contains(t, logs.String(), "bytes=9")
	aside, err := filepath.Glob(path + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	kept, err := os.ReadFile(aside[0])
	require.NoError(t, err)
	require.Equal(t, data, kept, "the damaged file is kept as it was")
	require.NoError(t, j.Add(context.Background(), JournalEntry{TaskID: "new"}))
	require.NoError(t, j.Close())
	require.ElementsMatch(t, []string{"before", "after", "new"}, keys(pendingIDs(t, openTestJournal(t, path))))

	// A torn tail: cut and logged, nothing set aside.
	torn := filepath.Join(dir, "torn")
	rec := fj.record(opAdd, []byte(`{"id":"t2"}`))
	require.NoError(t, os.WriteFile(torn, append(fj.record(opAdd, []byte(`{"id":"t1"}`)), rec[:len(rec)-3]...), 0o600))
	logs = logBuffer{}
	j, err = newFileJournal(torn, fileJournalDeps{log: logs.logger()})
	require.NoError(t, err)
	defer j.Close()
	require.Equal(t, []string{"t1"}, keys(pendingIDs(t, j)))
	require.Contains(t, logs.String(), "torn record")
	require.Contains(t, logs.String(), fmt.Sprintf("bytes=%d", len(rec)-3))
	aside, err = filepath.Glob(torn + ".corrupt-*")
	require.NoError(t, err)
	require.Empty(t, aside)
}
