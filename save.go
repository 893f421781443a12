package runway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// SavedFiles are the paths SaveResult wrote (or found already complete). ImagePath is empty
// when the result has no cover.
type SavedFiles struct {
	VideoPath, ImagePath string
}

// SaveResult downloads a successful result's video and cover, concurrently, into dir
// (created if missing) as <name><ext> and <name>.cover<ext>, where <name> is the task id
// encoded by the scheme below; FindSavedFiles finds them again. The extension comes from
// the URL path, else the Content-Type, else .mp4 / .jpg.
//
// File names: lower-case ASCII letters, digits and '-' (not leading) are kept; every other
// byte, upper-case letters included, becomes '_' and two lower-case hex digits ("Task_1" is
// "_54ask_5f1"). A Kie task id (a lower-case UUID) is therefore its own name. The name never
// holds '.', so the first '.' ends it and no (task, file) pair shares a path with another;
// it holds no upper-case letter, so ids that differ only in case stay apart on
// case-insensitive file systems; and it cannot name a path outside dir. A name that is a
// Windows device name (con, nul, com1, ...) has its first letter encoded too, and one longer
// than 200 bytes is cut and ends in '~' and 24 hex digits of the id's SHA-256.
//
// Each file is written to a hidden temporary file in dir, synced, renamed to its final name
// and the directory synced, so a crash or failure never leaves a partial file under the final
// name (at worst a ".*.part" temp file after a crash). A file already present under its final
// name, with any extension of its kind (a video saved as .mov is found when the link later
// ends in .mp4), is kept and not fetched again, so re-running after a completed save does no
// network work. Files saved by v0.1 (<task id><ext> and <task id>-cover<ext>) are recognised
// too, for ids whose v0.1 names cannot be another task's: lower-case ASCII letters, digits,
// '-' and '.' (not first), at most 100 bytes, which Kie's task ids are; a v0.1 file counts
// only with an extension of its kind. A failed result, or one without a video URL, is an error and nothing is written.
// If one file fails the other is still saved; the error joins the failures and SavedFiles
// names what was saved. Downloads behave as in Download; progress covers both files, and
// WithDownloadTimeout bounds the whole call.
func (c *Client) SaveResult(ctx context.Context, r *Result, dir string, opts ...DownloadOption) (SavedFiles, error) {
	cfg, err := c.downloadConfig("SaveResult", opts)
	if err != nil {
		return SavedFiles{}, err
	}
	return c.saveWith(ctx, r, dir, cfg)
}

// saveWith is SaveResult with its options already applied (SaveResultFunc and SaveQueue apply
// theirs once), WithOnSaved's func included.
func (c *Client) saveWith(ctx context.Context, r *Result, dir string, cfg downloadConfig) (SavedFiles, error) {
	saved, err := c.saveResult(ctx, r, dir, cfg)
	if cfg.onSaved != nil {
		cfg.onSaved(r, saved, err)
	}
	return saved, err
}

func (c *Client) saveResult(ctx context.Context, r *Result, dir string, cfg downloadConfig) (SavedFiles, error) {
	if err := checkSavable(r); err != nil {
		return SavedFiles{}, err
	}
	if dir == "" {
		return SavedFiles{}, errors.New("runway: save: empty directory")
	}
	base, err := fileStem(r.TaskID)
	if err != nil {
		return SavedFiles{}, err
	}
	ctx, cancel := withDownloadTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SavedFiles{}, errorf("runway: save task %s: %w", printable(r.TaskID, 128), err)
	}
	jobs := saveJobs(r.TaskID, base, r.VideoURL, r.ImageURL)
	agg := newProgressSum(cfg.progress, len(jobs))
	paths := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i := range jobs {
		jc := cfg
		jc.progress = agg.part(i)
		wg.Go(func() {
			paths[i], errs[i] = c.saveFile(ctx, dir, jobs[i], jc)
		})
	}
	wg.Wait()
	saved := SavedFiles{VideoPath: paths[0]}
	if len(jobs) > 1 {
		saved.ImagePath = paths[1]
	}
	if err := errors.Join(errs...); err != nil {
		return saved, errorf("runway: save task %s: %w", printable(r.TaskID, 128), err)
	}
	if err := syncDir(dir); err != nil {
		return saved, errorf("runway: save task %s: sync dir: %w", printable(r.TaskID, 128), err)
	}
	agg.finish()
	return saved, nil
}

// checkSavable refuses results that have nothing to save.
func checkSavable(r *Result) error {
	if r == nil {
		return errors.New("runway: save: nil result")
	}
	if err := r.Err(); err != nil {
		return errorf("runway: save: %w", err)
	}
	if r.VideoURL == "" {
		return errorf("runway: save task %s: result has no video URL", printable(r.TaskID, 128))
	}
	return nil
}

type saveJob struct {
	url, name string
	legacy    string   // the name v0.1 gave the file, when unambiguous (see legacyStem), or ""
	exts      []string // extensions accepted from the URL path
	def       string   // extension when neither URL nor Content-Type tells
	taskID    string   // for the observer
}

// saveJobs are the files of task id saved under stem: the video, and the cover when
// coverURL is set.
func saveJobs(id, stem, videoURL, coverURL string) []saveJob {
	old := legacyStem(id)
	video := saveJob{url: videoURL, name: stem, exts: videoExts, def: ".mp4", taskID: id}
	// v0.1 saved task X's cover as X-cover<ext>, possibly with a video extension: a
	// "-cover" name with a video extension may be another task's cover.
	if old != "" && old != stem && !strings.HasSuffix(old, "-cover") {
		video.legacy = old
	}
	jobs := []saveJob{video}
	if coverURL != "" {
		cover := saveJob{url: coverURL, name: stem + coverSuffix, exts: imageExts, def: ".jpg", taskID: id}
		if old != "" {
			cover.legacy = old + "-cover"
		}
		jobs = append(jobs, cover)
	}
	return jobs
}

// legacyStem returns the name v0.1 gave task id's files (<id><ext> and <id>-cover<ext>) when
// those names cannot be taken for another task's files, else "". That holds when v0.1 kept
// the id as it was (at most 100 bytes of lower-case ASCII letters, digits, '-' and '.', '.'
// not first): such a name is no other id's v0.1 name (v0.1 appended a hash to every id it
// changed), has no '_' so it is no escaped name of the current scheme, and has no upper-case
// letter so it is no current name on a case-insensitive file system either. A v0.1 file is
// accepted only with an extension of its kind (video or image): that tells task X's cover
// from task "X-cover"'s video, the one pair of files v0.1 could give the same name.
func legacyStem(id string) string {
	if id == "" || len(id) > 100 || id[0] == '.' {
		return ""
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.') {
			return ""
		}
	}
	return id
}

// findJobFile returns the file an earlier run saved for job in dir, or "": under the
// current name or the v0.1 one, with any extension of its kind, the one the URL names first
// (a file saved as .mov is found when the link later ends in .mp4).
func findJobFile(dir string, job saveJob, urlExt string) string {
	exts := job.exts
	if urlExt != "" {
		exts = append([]string{urlExt}, slices.DeleteFunc(slices.Clone(job.exts), func(e string) bool { return e == urlExt })...)
	}
	if p := findSaved(dir, job.name, exts); p != "" {
		return p
	}
	if job.legacy != "" {
		return findSaved(dir, job.legacy, exts)
	}
	return ""
}

var (
	videoExts = []string{".mp4", ".mov", ".webm", ".mkv", ".m4v"}
	imageExts = []string{".jpg", ".jpeg", ".png", ".webp", ".gif"}
	typeExts  = map[string]string{
		"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm", "video/x-matroska": ".mkv",
		"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif",
	}
)

// saveFile saves one file atomically and returns its final path.
func (c *Client) saveFile(ctx context.Context, dir string, job saveJob, cfg downloadConfig) (string, error) {
	ext := urlExt(job.url, job.exts)
	if p := findJobFile(dir, job, ext); p != "" {
		return p, nil // saved by an earlier run
	}
	tmp, err := os.CreateTemp(dir, "."+job.name+".*.part")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	d := c.newDownload(job.url, tmp, cfg)
	d.taskID = job.taskID
	if _, err := d.run(ctx); err != nil {
		return "", err
	}
	if ext == "" && slices.Contains(job.exts, typeExts[d.mediaType]) {
		ext = typeExts[d.mediaType] // a cover served as video/mp4 still gets an image extension
	}
	if ext == "" {
		ext = job.def
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	final := filepath.Join(dir, job.name+ext)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	ok = true
	return final, nil
}

// urlExt returns the URL path's extension, lower-cased, if it is one of exts.
func urlExt(raw string, exts []string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	ext := strings.ToLower(path.Ext(u.Path))
	if slices.Contains(exts, ext) {
		return ext
	}
	return ""
}

// coverSuffix follows the name of a task's cover, before the extension.
const coverSuffix = ".cover"

// maxFileStem bounds the name derived from a task id, well under common 255-byte limits
// (with ".cover", the extension and the temp file's affixes).
const maxFileStem = 200

// windowsDevices are names Windows reserves in every directory, whatever the extension.
var windowsDevices = map[string]bool{
	"con": true, "prn": true, "aux": true, "nul": true,
	"com0": true, "com1": true, "com2": true, "com3": true, "com4": true,
	"com5": true, "com6": true, "com7": true, "com8": true, "com9": true,
	"lpt0": true, "lpt1": true, "lpt2": true, "lpt3": true, "lpt4": true,
	"lpt5": true, "lpt6": true, "lpt7": true, "lpt8": true, "lpt9": true,
}

// fileStem turns a task id into the name of its saved files, by the scheme documented on
// SaveResult. The encoding is one-to-one: '_' starts every escape, so the result decodes
// back to the id (except when cut, where the hash keeps names apart).
func fileStem(taskID string) (string, error) {
	if err := validTaskID("TaskID", taskID); err != nil {
		return "", errorf("runway: save: %w", err)
	}
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(taskID); i++ {
		ch := taskID[i]
		keep := ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' && i > 0
		if i == 0 && keep && windowsDevices[taskID] {
			keep = false
		}
		if keep {
			b.WriteByte(ch)
		} else {
			b.WriteByte('_')
			b.WriteByte(hexDigits[ch>>4])
			b.WriteByte(hexDigits[ch&0xf])
		}
	}
	name := b.String()
	if len(name) > maxFileStem {
		const hashLen = 24
		cut := maxFileStem - 1 - hashLen
		// Do not split an escape: back up to its '_'.
		if i := strings.LastIndexByte(name[cut-2:cut], '_'); i >= 0 {
			cut = cut - 2 + i
		}
		sum := sha256.Sum256([]byte(taskID))
		name = name[:cut] + "~" + hex.EncodeToString(sum[:])[:hashLen]
	}
	return name, nil
}

// FindSavedFiles returns the files SaveResult saved for taskID in dir, by the naming scheme
// documented on SaveResult (files saved by v0.1 included): each path is empty when that file
// is not there (the cover also when the task had none). It touches no network. An invalid
// task id is an error.
func FindSavedFiles(dir, taskID string) (SavedFiles, error) {
	stem, err := fileStem(taskID)
	if err != nil {
		return SavedFiles{}, err
	}
	jobs := saveJobs(taskID, stem, "", "cover")
	return SavedFiles{
		VideoPath: findJobFile(dir, jobs[0], ""),
		ImagePath: findJobFile(dir, jobs[1], ""),
	}, nil
}

// findSaved returns the first regular file dir/name<ext> for ext in exts, or "".
func findSaved(dir, name string, exts []string) string {
	for _, e := range exts {
		p := filepath.Join(dir, name+e)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// syncDir makes renames in dir durable. Windows cannot sync a directory; there it is a no-op.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// progressSum reports the progress of several concurrent downloads as one: done is the sum,
// total the sum once every part's total is known (-1 before).
type progressSum struct {
	mu     sync.Mutex
	fn     func(done, total int64)
	done   []int64
	totals []int64
	// last and lastTotal are the previous call's arguments.
	last, lastTotal int64
}

func newProgressSum(fn func(done, total int64), parts int) *progressSum {
	p := &progressSum{fn: fn, done: make([]int64, parts), totals: make([]int64, parts), last: -1}
	for i := range p.totals {
		p.totals[i] = -1
	}
	return p
}

// part returns the progress callback for part i, or nil when nobody listens.
func (p *progressSum) part(i int) func(done, total int64) {
	if p.fn == nil {
		return nil
	}
	return func(done, total int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.done[i], p.totals[i] = done, total
		p.emit(false)
	}
}

// finish makes the final call, with done == total, once every part has ended.
func (p *progressSum) finish() {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.emit(true)
}

func (p *progressSum) emit(final bool) {
	var done, total int64
	for i := range p.done {
		done += p.done[i]
		if p.totals[i] < 0 || total < 0 {
			total = -1
		} else {
			total += p.totals[i]
		}
	}
	if final {
		total = done
	}
	if done < p.last || done == p.last && total == p.lastTotal {
		return
	}
	p.last, p.lastTotal = done, total
	p.fn(done, total)
}

// SaveResultFunc returns a result func for the callback handler (WithResultFunc) that saves
// each successful result into dir with SaveResult before the handler answers Kie; failed
// tasks are skipped (nil error). An error makes the handler answer 5xx, so Kie retries the
// callback and the save is attempted again (files already saved are kept).
//
// Use it only when saves are fast: Kie gives up on a callback after 15 s and the handler gives
// the result func about 10 s, which a multi-megabyte video from a slow host can exceed. For
// anything else use a SaveQueue, whose Enqueue has the same signature and returns at once.
//
// Invalid options panic here, with a message naming them, since the func returns no error
// of its own.
func (c *Client) SaveResultFunc(dir string, opts ...DownloadOption) func(ctx context.Context, r *Result) error {
	cfg, err := c.downloadConfig("SaveResultFunc", opts)
	if err != nil {
		panic(err.Error())
	}
	return func(ctx context.Context, r *Result) error {
		if r != nil && r.Err() != nil {
			return nil
		}
		_, err := c.saveWith(ctx, r, dir, cfg)
		return err
	}
}
