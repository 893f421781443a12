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
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrJournalLocked matches the error NewFileJournal returns when another FileJournal (in this
// process or another one) has the same file open.
var ErrJournalLocked = errors.New("runway: journal file is in use")

// errJournalClosed is returned by a FileJournal's operations after Close.
var errJournalClosed = errors.New("runway: journal is closed")

// FileJournal is a Journal kept in one local file: an append-only log of records, each made
// durable (written and fsynced) before the call returns, so that it survives a crash or
// kill -9 of the process at any point (a new file's directory is fsynced too, and so is the
// directory after each rewrite). A record cut short by a crash (the last one) is dropped when
// the file is opened again, never a failed start; damage in the middle of the file keeps the
// entries on both sides and sets the damaged file aside (see NewFileJournal). Both are logged
// to slog.Default() at Warn level, with the bytes dropped, as are failed compactions. The file is rewritten
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
	// dirUnsynced: a compaction renamed a new file into place but could not fsync the
	// directory, so the rename (and every record written to the new file) may not survive a
	// crash; the next write syncs the directory again before it reports success.
	dirUnsynced bool

	log     *slog.Logger
	syncDir func(dir string) error
}

// fileJournalDeps are what tests replace in a FileJournal.
type fileJournalDeps struct {
	log     *slog.Logger           // default slog.Default()
	syncDir func(dir string) error // default syncDir
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

// NewFileJournal opens (or creates) the journal file at path and locks it; a new file's
// directory is fsynced, so that the file itself survives a crash. A torn last record, left
// by a crash in the middle of a write, is dropped (and the bytes dropped are logged at Warn
// level). Valid records after one that does not check out mean corruption in the middle of
// the file rather than a torn write: the file is then kept aside as path + ".corrupt-" and
// a timestamp, for a person to look at, and replaced by one holding every entry read, from
// before and after the damage; that is logged at Warn level too. The journal logs to
// slog.Default().
func NewFileJournal(path string) (*FileJournal, error) {
	return newFileJournal(path, fileJournalDeps{})
}

func newFileJournal(path string, deps fileJournalDeps) (*FileJournal, error) {
	if deps.log == nil {
		deps.log = slog.Default()
	}
	if deps.syncDir == nil {
		deps.syncDir = syncDir
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, errorf("runway: journal %s: %w", path, err)
	}
	f, err := openLocked(abs)
	if err != nil {
		return nil, err
	}
	j := &FileJournal{path: abs, f: f, entries: make(map[string]JournalEntry), slack: defaultCompactSlack,
		log: deps.log, syncDir: deps.syncDir}
	// The file may have just been created: its directory entry must be durable before any
	// record written to it is reported durable.
	if err := j.syncDir(filepath.Dir(abs)); err != nil {
		j.closeFile()
		return nil, errorf("runway: journal %s: fsync directory: %w", abs, err)
	}
	// A compaction interrupted by a crash leaves its temporary file; the lock is ours, so
	// nobody else is writing it.
	_ = os.Remove(j.tmpPath())
	if err := j.load(); err != nil {
		j.closeFile()
		return nil, errorf("runway: journal %s: %w", abs, err)
	}
	return j, nil
}

// openLocked opens path (creating it 0600) and takes its lock. A compaction replaces the file
// by rename: if the file locked is no longer the one at path, it opens it again.
func openLocked(path string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, errorf("runway: journal: %w", err)
		}
		if err := lockFile(f, path); err != nil {
			_ = f.Close()
			if errors.Is(err, ErrJournalLocked) {
				return nil, fmt.Errorf("%w: %s is open in another FileJournal (this process or another); close that one first", ErrJournalLocked, path)
			}
			return nil, errorf("runway: journal %s: lock: %w", path, err)
		}
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			if fi.Mode().Perm() != 0o600 {
				if err := f.Chmod(0o600); err != nil {
					unlockFile(f, path)
					_ = f.Close()
					return nil, errorf("runway: journal %s: %w", path, err)
				}
			}
			return f, nil
		}
		unlockFile(f, path)
		_ = f.Close()
	}
	return nil, fmt.Errorf("%w: %s keeps being replaced while opening", ErrJournalLocked, path)
}

// load reads every valid record. Damage at the end (a torn write) is cut off; damage
// followed by valid records is corruption: the valid records on both sides are kept, and the
// file is set aside and rewritten (see NewFileJournal).
func (j *FileJournal) load() error {
	data, err := io.ReadAll(bufio.NewReaderSize(j.f, 64<<10))
	if err != nil {
		return err
	}
	var off, good int
	var dropped int64
	corrupt := false
	for off < len(data) {
		if n, rec, ok := j.parseRecord(data[off:]); ok {
			j.apply(rec)
			j.records++
			off += n
			good = off
			continue
		}
		next := j.nextRecord(data, off+1)
		if next < 0 {
			dropped += int64(len(data) - off)
			break
		}
		corrupt = true
		dropped += int64(next - off)
		off = next
	}
	if corrupt {
		return j.setAside(dropped)
	}
	if dropped > 0 {
		j.log.Warn("runway: journal ends in a torn record (a write cut short by a crash); dropped it",
			slog.String("path", j.path), slog.Int64("bytes", dropped))
		if err := j.f.Truncate(int64(good)); err != nil {
			return err
		}
		if err := j.f.Sync(); err != nil {
			return err
		}
	}
	j.size = int64(good)
	return nil
}

// parseRecord checks the record at the start of b: its length, checksum and payload. It
// returns the record's size and what it says.
func (j *FileJournal) parseRecord(b []byte) (int, journalRecord, bool) {
	if len(b) < recordHeader {
		return 0, journalRecord{}, false
	}
	n := binary.LittleEndian.Uint32(b[:4])
	if n == 0 || n > maxRecordSize || int64(n) > int64(len(b)-recordHeader) {
		return 0, journalRecord{}, false
	}
	p := b[recordHeader : recordHeader+int(n)]
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(b[4:recordHeader]) {
		return 0, journalRecord{}, false
	}
	rec, ok := decodePayload(p)
	if !ok {
		return 0, journalRecord{}, false
	}
	return recordHeader + int(n), rec, true
}

// nextRecord returns the offset of the first valid record in data at or after from, or -1.
func (j *FileJournal) nextRecord(data []byte, from int) int {
	for i := from; i+recordHeader < len(data); i++ {
		if _, _, ok := j.parseRecord(data[i:]); ok {
			return i
		}
	}
	return -1
}

// setAside keeps a corrupt file under a new name and replaces it with the entries read.
func (j *FileJournal) setAside(dropped int64) error {
	aside := fmt.Sprintf("%s.corrupt-%s", j.path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Link(j.path, aside); err != nil {
		return fmt.Errorf("corrupt records in the middle, and keeping the file aside failed: %w", err)
	}
	if err := j.rewriteLocked(); err != nil {
		return fmt.Errorf("corrupt records in the middle, and rewriting the file failed: %w", err)
	}
	j.log.Warn("runway: journal has corrupt records between valid ones; kept the valid entries on both sides and set the file aside",
		slog.String("path", j.path), slog.String("aside", aside), slog.Int64("bytes", dropped), slog.Int("pending", len(j.entries)))
	return nil
}

// journalRecord is what one record says: an entry added, or a task id removed.
type journalRecord struct {
	add    bool
	entry  JournalEntry // when add
	taskID string       // when not
}

// decodePayload decodes a record's payload; ok is false when it does not decode.
func decodePayload(p []byte) (rec journalRecord, ok bool) {
	switch p[0] {
	case opAdd:
		var e JournalEntry
		if json.Unmarshal(p[1:], &e) != nil || e.TaskID == "" {
			return journalRecord{}, false
		}
		return journalRecord{add: true, entry: e}, true
	case opRemove:
		if len(p) <= 1 {
			return journalRecord{}, false
		}
		return journalRecord{taskID: string(p[1:])}, true
	}
	return journalRecord{}, false
}

// apply replays one valid record.
func (j *FileJournal) apply(rec journalRecord) {
	if rec.add {
		j.entries[rec.entry.TaskID] = rec.entry
		return
	}
	delete(j.entries, rec.taskID)
}

// Add implements Journal: the entry is on disk when it returns.
func (j *FileJournal) Add(_ context.Context, e JournalEntry) error {
	if e.TaskID == "" {
		return errors.New("runway: journal: empty task id")
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return errorf("runway: journal: %w", err)
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
		return errorf("runway: journal: record of %d bytes exceeds %d", 1+len(data), maxRecordSize)
	}
	rec := j.record(op, data)
	if _, err := j.f.WriteAt(rec, j.size); err != nil {
		_ = j.f.Truncate(j.size)
		return errorf("runway: journal: write: %w", err)
	}
	if err := j.sync(); err != nil {
		// After a failed fsync the page cache may not match the disk; the record's fate is
		// unknown, so do not count on it either way.
		_ = j.f.Truncate(j.size)
		return errorf("runway: journal: fsync: %w", err)
	}
	if j.dirUnsynced && !j.noSync {
		// The record is in the file renamed into place by the last rewrite, whose directory
		// entry is not known to be durable yet. Failing, take the record back, so that the
		// file matches what the caller is told.
		if err := j.syncDir(filepath.Dir(j.path)); err != nil {
			_ = j.f.Truncate(j.size)
			_ = j.f.Sync()
			return errorf("runway: journal: fsync directory: %w", err)
		}
		j.dirUnsynced = false
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
// proportional to the pending entries. A failure leaves the old file in use and is logged.
func (j *FileJournal) compactLocked() {
	if j.records <= 2*len(j.entries)+j.slack {
		return
	}
	if err := j.rewriteLocked(); err != nil {
		j.log.Warn("runway: journal compaction failed; the file keeps growing until the next one",
			slog.String("path", j.path), slog.String("error", err.Error()))
	}
}

// rewriteLocked replaces the file with one holding one record per pending entry. The new file
// is written, fsynced and locked before it replaces the old one by rename; a failure before
// the rename leaves the old file in use. When the directory cannot be fsynced after the
// rename, the journal says so (Warn) and syncs it again before its next write succeeds.
func (j *FileJournal) rewriteLocked() error {
	tmp := j.tmpPath()
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := lockFile(f, tmp); err != nil {
		return fmt.Errorf("lock: %w", err)
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
			return err
		}
		rec := j.record(opAdd, payload)
		if _, err := w.Write(rec); err != nil {
			return err
		}
		size += int64(len(rec))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !j.noSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync: %w", err)
		}
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return err
	}
	ok = true
	moveLock(tmp, j.path)
	unlockFile(j.f, j.path)
	_ = j.f.Close()
	j.f, j.size, j.records = f, size, len(j.entries)
	if err := j.syncDir(filepath.Dir(j.path)); err != nil {
		j.dirUnsynced = true
		j.log.Warn("runway: journal directory fsync failed after rewriting the file; the next write retries it",
			slog.String("path", j.path), slog.String("error", err.Error()))
	}
	return nil
}

func (j *FileJournal) tmpPath() string { return j.path + ".tmp" }
