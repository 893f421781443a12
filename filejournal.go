package runway

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// ErrJournalLocked matches the error NewFileJournal returns when another FileJournal (in this
// process or another one) has the same file open.
var ErrJournalLocked = errors.New("runway: journal file is in use")

// errJournalClosed is returned by a FileJournal's operations after Close.
var errJournalClosed = errors.New("runway: journal is closed")

// FileJournal is a Journal kept in one local file: an append-only log of records, each made
// durable (written and fsynced) before the call returns, so that it survives a crash or
// kill -9 of the process at any point. A record cut short by a crash (the last one) is
// dropped when the file is opened again, never a failed start. The file is rewritten
// (compacted) as entries are removed, so its size stays proportional to the pending tasks.
// It is created with mode 0600, and is locked while open: a second NewFileJournal on the
// same path, from this process or another, fails with ErrJournalLocked until Close. On
// Linux, the BSDs and macOS the lock is flock(2), held by the open file; elsewhere it
// guards only against a second open within the process.
//
// A FileJournal is safe for concurrent use. It also implements JournalReader.
type FileJournal struct {
	path string

	mu      sync.Mutex
	f       *os.File // nil once closed
	size    int64    // bytes of valid records in f
	records int      // records in f
	entries map[string]JournalEntry
	slack   int // compaction threshold, see compactLocked
	buf     []byte
	noSync  bool // skip fsync: only for measuring file sizes, which it does not change
}

var (
	_ Journal       = (*FileJournal)(nil)
	_ JournalReader = (*FileJournal)(nil)
)

// Record layout: a header of the payload's length and its CRC-32C (both little-endian
// uint32), then the payload: an op byte, then the entry as JSON (add) or the task id (remove).
const (
	recordHeader  = 8
	opAdd         = 'a'
	opRemove      = 'r'
	maxRecordSize = 1 << 20
	// defaultCompactSlack is how many dead records the file may hold beyond the live ones
	// before it is rewritten.
	defaultCompactSlack = 1024
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// NewFileJournal opens (or creates) the journal file at path and locks it. A torn last
// record, left by a crash in the middle of a write, is dropped; so is anything after the
// first record that does not check out.
func NewFileJournal(path string) (*FileJournal, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("runway: journal %s: %w", path, err)
	}
	f, err := openLocked(abs)
	if err != nil {
		return nil, err
	}
	j := &FileJournal{path: abs, f: f, entries: make(map[string]JournalEntry), slack: defaultCompactSlack}
	// A compaction interrupted by a crash leaves its temporary file; the lock is ours, so
	// nobody else is writing it.
	_ = os.Remove(j.tmpPath())
	if err := j.load(); err != nil {
		j.closeFile()
		return nil, fmt.Errorf("runway: journal %s: %w", abs, err)
	}
	return j, nil
}

// openLocked opens path (creating it 0600) and takes its lock. A compaction replaces the file
// by rename: if the file locked is no longer the one at path, it opens it again.
func openLocked(path string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("runway: journal: %w", err)
		}
		if err := lockFile(f, path); err != nil {
			_ = f.Close()
			if errors.Is(err, ErrJournalLocked) {
				return nil, fmt.Errorf("%w: %s is open in another FileJournal (this process or another); close that one first", ErrJournalLocked, path)
			}
			return nil, fmt.Errorf("runway: journal %s: lock: %w", path, err)
		}
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			if fi.Mode().Perm() != 0o600 {
				if err := f.Chmod(0o600); err != nil {
					unlockFile(f, path)
					_ = f.Close()
					return nil, fmt.Errorf("runway: journal %s: %w", path, err)
				}
			}
			return f, nil
		}
		unlockFile(f, path)
		_ = f.Close()
	}
	return nil, fmt.Errorf("%w: %s keeps being replaced while opening", ErrJournalLocked, path)
}

// load reads every valid record and cuts the file after the last one.
func (j *FileJournal) load() error {
	r := bufio.NewReaderSize(j.f, 64<<10)
	var hdr [recordHeader]byte
	var off int64
	var payload []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if n == 0 || n > maxRecordSize {
			break
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			break
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		if !j.apply(payload) {
			break
		}
		off += recordHeader + int64(n)
		j.records++
	}
	fi, err := j.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != off {
		if err := j.f.Truncate(off); err != nil {
			return err
		}
		if err := j.f.Sync(); err != nil {
			return err
		}
	}
	j.size = off
	return nil
}

// apply replays one record's payload; false means it does not decode.
func (j *FileJournal) apply(p []byte) bool {
	switch p[0] {
	case opAdd:
		var e JournalEntry
		if err := json.Unmarshal(p[1:], &e); err != nil || e.TaskID == "" {
			return false
		}
		j.entries[e.TaskID] = e
	case opRemove:
		delete(j.entries, string(p[1:]))
	default:
		return false
	}
	return true
}

// Add implements Journal: the entry is on disk when it returns.
func (j *FileJournal) Add(_ context.Context, e JournalEntry) error {
	if e.TaskID == "" {
		return errors.New("runway: journal: empty task id")
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("runway: journal: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.appendLocked(opAdd, payload); err != nil {
		return err
	}
	e.Meta = cloneMeta(e.Meta)
	j.entries[e.TaskID] = e
	return nil
}

// Remove implements Journal: the removal is on disk when it returns. Removing an id that is
// not pending writes nothing.
func (j *FileJournal) Remove(_ context.Context, taskID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errJournalClosed
	}
	if _, ok := j.entries[taskID]; !ok {
		return nil
	}
	if err := j.appendLocked(opRemove, []byte(taskID)); err != nil {
		return err
	}
	delete(j.entries, taskID)
	j.compactLocked()
	return nil
}

// Pending implements Journal.
func (j *FileJournal) Pending(context.Context) ([]JournalEntry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil, errJournalClosed
	}
	out := make([]JournalEntry, 0, len(j.entries))
	for _, e := range j.entries {
		e.Meta = cloneMeta(e.Meta)
		out = append(out, e)
	}
	return out, nil
}

// Entry implements JournalReader.
func (j *FileJournal) Entry(_ context.Context, taskID string) (*JournalEntry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil, errJournalClosed
	}
	e, ok := j.entries[taskID]
	if !ok {
		return nil, nil
	}
	e.Meta = cloneMeta(e.Meta)
	return &e, nil
}

// Close releases the file and its lock. Operations after Close fail; Close again returns nil.
func (j *FileJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	return j.closeFile()
}

func (j *FileJournal) closeFile() error {
	unlockFile(j.f, j.path)
	err := j.f.Close()
	j.f = nil
	return err
}

// record encodes one record into j.buf.
func (j *FileJournal) record(op byte, data []byte) []byte {
	n := 1 + len(data)
	buf := append(j.buf[:0], make([]byte, recordHeader)...)
	buf = append(buf, op)
	buf = append(buf, data...)
	binary.LittleEndian.PutUint32(buf[:4], uint32(n))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(buf[recordHeader:], crcTable))
	j.buf = buf
	return buf
}

// appendLocked writes one record at the end of the file and fsyncs it. On failure the file is
// cut back to its last good record, so that a later record does not follow garbage.
func (j *FileJournal) appendLocked(op byte, data []byte) error {
	if j.f == nil {
		return errJournalClosed
	}
	if 1+len(data) > maxRecordSize {
		return fmt.Errorf("runway: journal: record of %d bytes exceeds %d", 1+len(data), maxRecordSize)
	}
	rec := j.record(op, data)
	if _, err := j.f.WriteAt(rec, j.size); err != nil {
		_ = j.f.Truncate(j.size)
		return fmt.Errorf("runway: journal: write: %w", err)
	}
	if err := j.sync(); err != nil {
		// After a failed fsync the page cache may not match the disk; the record's fate is
		// unknown, so do not count on it either way.
		_ = j.f.Truncate(j.size)
		return fmt.Errorf("runway: journal: fsync: %w", err)
	}
	j.size += int64(len(rec))
	j.records++
	return nil
}

func (j *FileJournal) sync() error {
	if j.noSync {
		return nil
	}
	return j.f.Sync()
}

// compactLocked rewrites the file with one record per pending entry once the dead records
// outnumber the live ones by the slack: amortised O(1) per removal, and a file whose size is
// proportional to the pending entries. The new file is written, fsynced and locked before it
// replaces the old one by rename; a failure leaves the old file in use.
func (j *FileJournal) compactLocked() {
	if j.records <= 2*len(j.entries)+j.slack {
		return
	}
	tmp := j.tmpPath()
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if lockFile(f, tmp) != nil {
		return
	}
	defer func() {
		if !ok {
			unlockFile(f, tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	var size int64
	for _, e := range j.entries {
		payload, err := json.Marshal(e)
		if err != nil {
			return
		}
		rec := j.record(opAdd, payload)
		if _, err := w.Write(rec); err != nil {
			return
		}
		size += int64(len(rec))
	}
	if w.Flush() != nil || (!j.noSync && f.Sync() != nil) {
		return
	}
	if os.Rename(tmp, j.path) != nil {
		return
	}
	ok = true
	moveLock(tmp, j.path)
	_ = syncDir(filepath.Dir(j.path)) // the new file is complete either way
	unlockFile(j.f, j.path)
	_ = j.f.Close()
	j.f, j.size, j.records = f, size, len(j.entries)
}

func (j *FileJournal) tmpPath() string { return j.path + ".tmp" }
