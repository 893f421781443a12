package runway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Download defaults.
const (
	// DefaultMaxDownloadBytes caps one downloaded file unless WithMaxBytes says otherwise.
	DefaultMaxDownloadBytes int64 = 2 << 30
	// DefaultDownloadAttemptTimeout bounds one download attempt (request and body); a
	// timed-out attempt is retried and resumes where the server allows it.
	DefaultDownloadAttemptTimeout = 5 * time.Minute
	// DefaultDownloadTimeout bounds a whole Download or SaveResult call (WithDownloadTimeout).
	DefaultDownloadTimeout = 30 * time.Minute
)

// Download errors. A failed download is a *DownloadError that matches the relevant ones.
var (
	// ErrHostNotAllowed: the URL (or a redirect) is not http(s), or its host is not a public
	// address (loopback, link-local, private, unspecified, multicast, any other
	// special-purpose range, also inside an IPv6 form such as NAT64 or 6to4), or is written in
	// a form that changes on the way (a non-ASCII name, a name ending in a number that is not
	// a dotted-quad IPv4 address), or the client's transport is not an *http.Transport and
	// WithAllowPrivateHosts was not given.
	ErrHostNotAllowed = errors.New("runway: download host not allowed")
	// ErrTooLarge: the file is larger than the WithMaxBytes cap.
	ErrTooLarge = errors.New("runway: download larger than the size limit")
	// ErrIncomplete: the byte count did not match Content-Length or Content-Range after the
	// retries, or a response contradicted the size announced earlier.
	ErrIncomplete = errors.New("runway: download incomplete")
	// ErrPartialWrite: bytes were already written to a writer that cannot be rewound when the
	// download had to restart from zero (the server ignored Range). The writer holds partial data.
	ErrPartialWrite = errors.New("runway: partial data written and the writer cannot be rewound")
	// ErrDownloadTimeout: a Download or SaveResult ran longer than its WithDownloadTimeout
	// bound. The error also matches context.DeadlineExceeded.
	ErrDownloadTimeout = errors.New("runway: download overall timeout")
	// ErrSaveQueueFull: SaveQueue.Enqueue found the queue full.
	ErrSaveQueueFull = errors.New("runway: save queue full")
	// ErrSaveQueueClosed: SaveQueue.Enqueue was called after Close; also the error passed to
	// WithOnSaved for the queued results Close left unsaved when its context ended.
	ErrSaveQueueClosed = errors.New("runway: save queue closed")
)

// DownloadError is a failed Download. It names the file by host and path only: the query,
// which carries the signature of a temporary link, never appears.
type DownloadError struct {
	// Host and Path locate the file (of the last URL tried, after a refresh or redirect).
	Host, Path string
	// StatusCode is the last HTTP status, 0 when no response came.
	StatusCode int
	// Written is how many bytes the writer holds from this download.
	Written int64
	// Err is the cause.
	Err error
}

// Error names the host and path only: a signed URL's query never appears.
func (e *DownloadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runway: download %s%s", errText(e.Host), errText(e.Path))
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Written > 0 {
		fmt.Fprintf(&b, " (%d bytes written)", e.Written)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %s", errCause(e.Err))
	}
	return onePrefix(b.String())
}

// Unwrap returns the cause (a sentinel such as ErrIncomplete, or a transport error).
func (e *DownloadError) Unwrap() error { return e.Err }

// Is matches ErrNotFound for 404/410, ErrUnauthorized for 401/403, ErrRateLimited for 429 and
// ErrServer for 5xx, as for API errors.
func (e *DownloadError) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return target == ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return target == ErrUnauthorized
	case http.StatusTooManyRequests:
		return target == ErrRateLimited
	}
	return e.StatusCode >= 500 && target == ErrServer
}

// DownloadOption configures Download, SaveResult, SaveResultFunc and NewSaveQueue. Build
// options only with the With* functions; the zero DownloadOption does nothing. A value that
// cannot work (a negative count or duration, a zero size, a nil func) is an error, never
// the default: Download, SaveResult and NewSaveQueue return an error matching
// ErrInvalidRequest that names each bad option, one per line, and fetch nothing;
// SaveResultFunc panics. Leave an option out to get its default.
type DownloadOption struct {
	apply func(*downloadConfig) error
}

type downloadConfig struct {
	allowPrivate   bool
	maxBytes       int64
	progress       func(done, total int64)
	attemptTimeout time.Duration
	timeout        time.Duration
	retries        int
	onSaved        func(r *Result, saved SavedFiles, err error)
}

// WithAllowPrivateHosts lets downloads reach loopback, link-local and private addresses
// (local test servers, a storage host on your own network). Without it such hosts are
// refused, so a forged callback cannot make your server fetch its own metadata endpoint.
// It is also needed when the client's http.Client has a Transport that is not an
// *http.Transport (a wrapping RoundTripper), since the address check cannot run there;
// rather give downloads a plain transport with the client option WithDownloadTransport and
// keep the check. With the check on, direct connections use the SDK's checked dialer
// instead of the transport's DialContext, so a custom (SOCKS, VPN) dialer is not used for
// downloads; with WithAllowPrivateHosts the transport is used as it is, dialer included.
func WithAllowPrivateHosts() DownloadOption {
	return DownloadOption{func(c *downloadConfig) error { c.allowPrivate = true; return nil }}
}

// WithMaxBytes caps the size of one file (default DefaultMaxDownloadBytes). A larger
// announced size fails before any byte is written; a body that grows past the cap fails
// when it does. n must be at least 1.
func WithMaxBytes(n int64) DownloadOption {
	return DownloadOption{func(c *downloadConfig) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxBytes: need at least 1 byte, got %d (leave the option out for the default)", n)
		}
		c.maxBytes = n
		return nil
	}}
}

// WithDownloadProgress calls fn as bytes arrive, from the downloading goroutine: keep it fast.
// done never decreases (a restart from zero is not reported until it passes the previous
// count); total is -1 while unknown; the last call has done == total. SaveResult reports the
// video and the cover together, serialised. fn must not be nil.
func WithDownloadProgress(fn func(done, total int64)) DownloadOption {
	return DownloadOption{func(c *downloadConfig) error {
		if fn == nil {
			return errors.New("WithDownloadProgress: nil func")
		}
		c.progress = fn
		return nil
	}}
}

// WithAttemptTimeout bounds each attempt, from the request to the last byte (default
// DefaultDownloadAttemptTimeout); a timed-out attempt is retried and resumes if the server
// supports ranges. With a server that does not resume, the bound must cover the whole file.
// d == 0 means no per-attempt bound (the overall WithDownloadTimeout and ctx still apply);
// a negative d is an error.
func WithAttemptTimeout(d time.Duration) DownloadOption {
	return DownloadOption{func(c *downloadConfig) error {
		if d < 0 {
			return fmt.Errorf("WithAttemptTimeout: negative duration %s (0 turns the per-attempt bound off)", d)
		}
		c.attemptTimeout = d
		return nil
	}}
}

// WithDownloadTimeout bounds a whole Download or SaveResult call, every attempt, retry
// wait and link refresh included (default DefaultDownloadTimeout), so a host that trickles
// bytes, and so keeps resetting the retry count, cannot hold it forever. SaveResult's bound
// covers the video and the cover together, and every SaveQueue job gets its own. A call
// that runs out fails with an error matching ErrDownloadTimeout and
// context.DeadlineExceeded. d == 0 means no overall bound (only ctx limits the call); a
// negative d is an error.
func WithDownloadTimeout(d time.Duration) DownloadOption {
	return DownloadOption{func(c *downloadConfig) error {
		if d < 0 {
			return fmt.Errorf("WithDownloadTimeout: negative duration %s (0 turns the overall bound off)", d)
		}
		c.timeout = d
		return nil
	}}
}

// WithDownloadRetries sets how many failed attempts in a row are retried (default: the
// client's WithMaxRetries); 0 means no retry. An attempt that brings new bytes resets the
// count, so a long download over a flaky link is not abandoned while it progresses (the
// overall WithDownloadTimeout still ends it). A negative n is an error.
func WithDownloadRetries(n int) DownloadOption {
	return DownloadOption{func(c *downloadConfig) error {
		if n < 0 {
			return fmt.Errorf("WithDownloadRetries: negative count %d (0 means no retry)", n)
		}
		c.retries = n
		return nil
	}}
}

// WithOnSaved is called after every SaveResult (also those run by SaveResultFunc and
// SaveQueue) with what was saved and the error, if any. It is the way to learn about failures
// of a SaveQueue's background saves. It means nothing to Download, which refuses it; fn
// must not be nil.
func WithOnSaved(fn func(r *Result, saved SavedFiles, err error)) DownloadOption {
	return DownloadOption{func(c *downloadConfig) error {
		if fn == nil {
			return errors.New("WithOnSaved: nil func")
		}
		c.onSaved = fn
		return nil
	}}
}

// invalidOptions reports the download options that cannot work, one per line.
type invalidOptions struct {
	op   string
	errs []error
}

func (e *invalidOptions) Error() string {
	return "runway: " + e.op + ": invalid options: " + errors.Join(e.errs...).Error()
}

// Is matches ErrInvalidRequest: nothing was fetched.
func (e *invalidOptions) Is(target error) bool { return target == ErrInvalidRequest }

func (e *invalidOptions) Unwrap() []error { return e.errs }

// downloadConfig applies opts for op ("Download", "SaveResult", ...); Download refuses
// WithOnSaved.
func (c *Client) downloadConfig(op string, opts []DownloadOption) (downloadConfig, error) {
	cfg := downloadConfig{
		maxBytes:       DefaultMaxDownloadBytes,
		attemptTimeout: DefaultDownloadAttemptTimeout,
		timeout:        DefaultDownloadTimeout,
		retries:        c.maxRetries,
	}
	var errs []error
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if op == "Download" && cfg.onSaved != nil {
		errs = append(errs, errors.New("WithOnSaved: Download saves nothing; pass it to SaveResult, SaveResultFunc or NewSaveQueue"))
	}
	if len(errs) > 0 {
		return cfg, &invalidOptions{op: op, errs: errs}
	}
	return cfg, nil
}

// withDownloadTimeout bounds ctx by the overall download timeout, if any.
func withDownloadTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, d,
		fmt.Errorf("%w (%s): %w", ErrDownloadTimeout, d, context.DeadlineExceeded))
}

// ctxErr is ctx's error, or the overall timeout's cause when that is what ended it.
func ctxErr(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrDownloadTimeout) {
		return cause
	}
	return ctx.Err()
}

// Download streams fileURL into w and returns the number of bytes written.
//
// The request goes through the client's HTTP transport but carries no Authorization header
// or API key, also after redirects. Only http(s) URLs are fetched, and unless
// WithAllowPrivateHosts is given, the file host must have a public address: not loopback,
// link-local, private, unspecified, multicast, nor any other entry of IANA's IPv4 and IPv6
// special-purpose registries, also when written as an IPv6 form that carries an IPv4
// address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4, Teredo, ISATAP). The host must be a
// plain ASCII name (letters, digits and '-'; an internationalised name in its xn-- form), a
// dotted-quad IPv4 address or an IPv6 literal: other forms ("ｌｏｃａｌｈｏｓｔ", "2130706433",
// "0x7f.1", "127.1") become another name or address on the way and are refused. A literal
// address is refused before any connection. A direct connection is checked on the address actually
// dialled, so DNS rebinding cannot bypass it; the deprecated Dial and DialTLS hooks of the
// transport are not used. When the transport's Proxy func (http.ProxyFromEnvironment in the
// default transport: HTTPS_PROXY, HTTP_PROXY, NO_PROXY) picks a proxy for the URL, the
// request goes through it, and the host name is resolved here (fully qualified, so search
// domains do not apply) and every address it has must be public before the request is
// sent; the proxy's own address is your choice and is not checked. For https the proxy is
// asked to CONNECT to the checked address, not the name (TLS still verifies the name and
// the Host header carries it), so DNS rebinding or a split-horizon DNS that gives the proxy
// internal addresses cannot lead it elsewhere. A plain http request names the host to the
// proxy (net/http writes the Host into the request line), and the proxy resolves it again,
// so for http through a proxy those remain possible: let the proxy's own rules refuse
// internal destinations. A name that does not resolve here fails the check. If the
// transport is not an *http.Transport, the check cannot be put in and downloads are
// refused (ErrHostNotAllowed) unless WithAllowPrivateHosts is given; WithDownloadTransport
// gives downloads a plain one.
//
// Network errors, 408, 429 (honouring Retry-After), and 5xx except 501 are retried with the
// client's backoff. After a cut, the download resumes with Range (and If-Range when the server
// gave a validator) if the server answers 206 with the matching Content-Range. If the server
// answers 200 instead, the download restarts from zero, which is possible only if w is an
// *os.File (anything with Seek and Truncate): it is truncated back to its offset at the start.
// For any other writer the error matches ErrPartialWrite and w holds partial data; use
// SaveResult, or write to a file, when that matters. The byte count is checked against
// Content-Length or the Content-Range total (ErrIncomplete). A write error is not retried.
//
// Each attempt is bounded by WithAttemptTimeout, not by the client's http.Client Timeout;
// the whole call, waits included, by WithDownloadTimeout (default DefaultDownloadTimeout)
// and ctx. Invalid options are an error matching ErrInvalidRequest; WithOnSaved is one here.
//
// A 403, 404 or 410 is answered once by fetching a fresh link through DownloadURL(fileURL)
// and retrying with it; the fresh link is a credential and appears in no error or log.
// Errors are *DownloadError and name the host and path only.
func (c *Client) Download(ctx context.Context, fileURL string, w io.Writer, opts ...DownloadOption) (int64, error) {
	cfg, err := c.downloadConfig("Download", opts)
	if err != nil {
		return 0, err
	}
	ctx, cancel := withDownloadTimeout(ctx, cfg.timeout)
	defer cancel()
	return c.newDownload(fileURL, w, cfg).run(ctx)
}

func (c *Client) newDownload(fileURL string, w io.Writer, cfg downloadConfig) *download {
	return &download{c: c, cfg: cfg, w: w, origURL: fileURL, total: -1, reported: -1}
}

// download is the state of one Download call across its attempts.
type download struct {
	c       *Client
	cfg     downloadConfig
	w       io.Writer
	origURL string
	taskID  string // the task the file belongs to, when known (SaveResult), for the observer

	cur           *url.URL // URL of the next attempt
	hc            *http.Client
	written       int64 // bytes in w from this download
	high          int64 // most bytes ever written (progress made)
	total         int64 // expected file size, -1 while unknown
	validator     string
	noRange       bool
	refreshed     bool
	restarted     bool // the current attempt started over from zero
	attempts      int  // requests made
	lastStatus    int
	reported      int64 // last done passed to the progress callback
	reportedTotal int64
	rewind        rewinder
	start         int64  // offset of w when the download began
	mediaType     string // Content-Type of the last full or partial response, without parameters
}

// rewinder is what Download needs to restart from zero: *os.File has it.
type rewinder interface {
	io.Seeker
	Truncate(size int64) error
}

// attemptError is the outcome of a failed attempt and how to go on.
type attemptError struct {
	err        error
	retry      bool          // transient: retry with backoff
	refresh    bool          // 403/404/410: refresh the link once
	retryAfter time.Duration // the server's hint
}

func (d *download) run(ctx context.Context) (_ int64, err error) {
	ctx, op := d.c.obs.start(ctx, OpDownload, d.taskID)
	defer d.c.obs.downloadEnd(op, d, &err)
	u, err := checkURL(d.origURL, d.cfg.allowPrivate)
	if err != nil {
		return 0, d.fail(u, err)
	}
	d.cur = u
	if rw, ok := d.w.(rewinder); ok {
		if off, err := rw.Seek(0, io.SeekCurrent); err == nil {
			d.rewind, d.start = rw, off
		}
	}
	hc, err := d.c.downloadClient(d.cfg.allowPrivate)
	if err != nil {
		return 0, d.fail(u, err)
	}
	d.hc = hc

	failures := 0
	for {
		before := d.high
		d.restarted = false
		ae := d.attempt(ctx)
		if ae == nil {
			d.report(d.written, d.written)
			return d.written, nil
		}
		if ctx.Err() != nil {
			return d.written, d.fail(d.cur, ctxErr(ctx))
		}
		switch {
		case ae.refresh && !d.refreshed:
			d.refreshed = true
			fresh, err := d.c.DownloadURL(ctx, d.origURL)
			if err != nil && ctx.Err() != nil {
				return d.written, d.fail(d.cur, ctxErr(ctx))
			}
			if err != nil {
				return d.written, d.fail(d.cur, fmt.Errorf("%w; refreshing the link failed: %w", ae.err, err))
			}
			u, err := checkURL(fresh, d.cfg.allowPrivate)
			if err != nil {
				return d.written, d.fail(u, fmt.Errorf("refreshed link: %w", err))
			}
			d.cur = u
			d.c.logger.LogAttrs(ctx, slog.LevelDebug, "runway: download link refreshed",
				slog.String("host", u.Host), slog.String("path", u.Path))
			continue
		case !ae.retry:
			return d.written, d.fail(d.cur, ae.err)
		}
		if d.high > before && !d.restarted {
			failures = 0 // resumed and got further: a flaky link that progresses is not given up
		}
		if failures >= d.cfg.retries {
			return d.written, d.fail(d.cur, ae.err)
		}
		wait := backoff(d.c.waitMin, d.c.waitMax, failures, ae.retryAfter)
		failures++
		d.c.logger.LogAttrs(ctx, slog.LevelDebug, "runway: retrying download",
			slog.String("host", d.cur.Host), slog.String("path", d.cur.Path),
			slog.Int("attempt", failures), slog.Int64("bytes", d.written),
			slog.Duration("wait", wait), slog.String("reason", ae.err.Error()))
		if err := sleepCtx(ctx, wait); err != nil {
			if ctx.Err() != nil {
				err = ctxErr(ctx)
			}
			return d.written, d.fail(d.cur, err)
		}
	}
}

func (d *download) fail(u *url.URL, err error) *DownloadError {
	e := &DownloadError{StatusCode: d.lastStatus, Written: d.written, Err: err}
	if u != nil {
		e.Host, e.Path = u.Host, u.Path
	}
	return e
}

// attempt makes one request and copies its body; nil means the file is complete.
func (d *download) attempt(ctx context.Context) *attemptError {
	d.attempts++
	if d.cfg.attemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.attemptTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.cur.String(), nil)
	if err != nil {
		return &attemptError{err: redactURLError(err)}
	}
	// Built by hand: no Authorization, and identity encoding so that sizes and ranges refer
	// to the bytes we write.
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept-Encoding", "identity")
	if d.written > 0 && !d.noRange {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(d.written, 10)+"-")
		if d.validator != "" {
			req.Header.Set("If-Range", d.validator)
		}
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		d.lastStatus = 0
		err = redactURLError(err)
		var certErr *tls.CertificateVerificationError
		refused := errors.Is(err, ErrHostNotAllowed) || errors.As(err, &certErr)
		return &attemptError{err: err, retry: !refused && decide(kindDownload, answer{}, true) == verdictRetry}
	}
	defer resp.Body.Close()
	d.lastStatus = resp.StatusCode
	d.cur = resp.Request.URL // after redirects: resume and report against the final URL

	switch resp.StatusCode {
	case http.StatusOK:
		if d.written > 0 {
			if err := d.restart(); err != nil {
				return &attemptError{err: err}
			}
		}
		if err := d.setTotal(resp.ContentLength); err != nil {
			return err
		}
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != d.written {
			// Not the range we asked for: ask for the whole file next time.
			d.noRange = true
			return &attemptError{err: fmt.Errorf("%w: unexpected Content-Range %q", ErrIncomplete, printable(resp.Header.Get("Content-Range"), 64)), retry: true}
		}
		if err := d.setTotal(total); err != nil {
			return err
		}
	case http.StatusRequestedRangeNotSatisfiable:
		d.noRange = true
		return &attemptError{err: errors.New("range not satisfiable"), retry: true}
	default:
		v := decide(kindDownload, answer{status: resp.StatusCode}, true)
		ae := &attemptError{err: errors.New(httpStatusText(resp.StatusCode)), retry: v == verdictRetry, refresh: v == verdictRefresh}
		if !ae.refresh {
			ae.retryAfter = retryAfterFrom(resp, d.c.now())
		}
		return ae
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil {
		d.mediaType = mt
	}
	if v := resp.Header.Get("ETag"); v != "" && !strings.HasPrefix(v, "W/") {
		d.validator = v
	} else if v := resp.Header.Get("Last-Modified"); v != "" {
		d.validator = v
	}
	return d.copyBody(resp.Body)
}

// setTotal records the announced size (-1: unknown) and checks it against the cap and
// against what earlier responses announced.
func (d *download) setTotal(total int64) *attemptError {
	if total < 0 {
		return nil
	}
	if total > d.cfg.maxBytes {
		return &attemptError{err: fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, total, d.cfg.maxBytes)}
	}
	if d.total >= 0 && total != d.total {
		return &attemptError{err: fmt.Errorf("%w: size changed from %d to %d bytes between attempts", ErrIncomplete, d.total, total)}
	}
	d.total = total
	return nil
}

// restart rewinds w to where the download began, or fails if it cannot.
func (d *download) restart() error {
	if d.rewind == nil {
		return fmt.Errorf("%w: the server does not resume (answered 200 to a Range request)", ErrPartialWrite)
	}
	if err := d.rewind.Truncate(d.start); err != nil {
		return fmt.Errorf("%w: truncate: %w", ErrPartialWrite, err)
	}
	if _, err := d.rewind.Seek(d.start, io.SeekStart); err != nil {
		return fmt.Errorf("%w: seek: %w", ErrPartialWrite, err)
	}
	d.written = 0
	d.restarted = true
	d.total = -1 // a full response announces the size afresh
	return nil
}

// copyBody copies the body into w, enforcing the cap and the announced size. Read errors are
// transient; write errors are not.
func (d *download) copyBody(body io.Reader) *attemptError {
	buf := make([]byte, 64<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if d.written+int64(n) > d.cfg.maxBytes {
				return &attemptError{err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, d.cfg.maxBytes)}
			}
			if d.total >= 0 && d.written+int64(n) > d.total {
				return &attemptError{err: fmt.Errorf("%w: body longer than the announced %d bytes", ErrIncomplete, d.total)}
			}
			m, werr := d.w.Write(buf[:n])
			d.written += int64(m)
			if d.written > d.high {
				d.high = d.written
			}
			if werr == nil && m < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return &attemptError{err: fmt.Errorf("write: %w", werr)}
			}
			d.report(d.written, d.total)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &attemptError{err: fmt.Errorf("%w: read after %d bytes: %w", ErrIncomplete, d.written, rerr), retry: true}
		}
	}
	if d.total >= 0 && d.written != d.total {
		return &attemptError{err: fmt.Errorf("%w: got %d of %d bytes", ErrIncomplete, d.written, d.total), retry: true}
	}
	return nil
}

// report calls the progress callback, keeping done monotonic and skipping repeats.
func (d *download) report(done, total int64) {
	if d.cfg.progress == nil || done < d.reported || done == d.reported && total == d.reportedTotal {
		return
	}
	d.reported, d.reportedTotal = done, total
	d.cfg.progress(done, total)
}

// parseContentRange parses "bytes start-end/total" ("*" total gives -1).
func parseContentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, size, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, e, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(s, 10, 64)
	end, err2 := strconv.ParseInt(e, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	total = -1
	if size != "*" {
		t, err := strconv.ParseInt(size, 10, 64)
		if err != nil || t <= end {
			return 0, 0, false
		}
		total = t
	}
	return start, total, true
}

// redactQueries hides the query of every URL quoted in err's text: net/http quotes a
// redirect's Location (a signed link) in its own errors, such as `failed to parse Location
// header "/a%zz?X-Amz-Signature=..."`. The error still unwraps to err.
func redactQueries(err error) error {
	if err == nil || !strings.Contains(err.Error(), "?") {
		return err
	}
	return &redactedError{err: err, text: redactQueryText(err.Error())}
}

type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// redactQueryText replaces what follows each '?' with redactedMark: inside a double-quoted
// string (as %q writes URLs) up to its closing quote, an escaped quote (\") not ending it;
// elsewhere up to the next space or quote.
func redactQueryText(s string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		b.WriteByte(ch)
		switch {
		case ch == '\\' && quoted && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case ch == '"':
			quoted = !quoted
		case ch == '?':
			j := i + 1
			for j < len(s) && s[j] != '"' && (quoted || !strings.ContainsRune(" \t\n'`", rune(s[j]))) {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				j++
			}
			if j > i+1 {
				b.WriteString(redactedMark)
			}
			i = j - 1
		}
	}
	return b.String()
}
