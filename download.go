package runway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Download defaults.
const (
	// DefaultMaxDownloadBytes caps one downloaded file unless WithMaxBytes says otherwise.
	DefaultMaxDownloadBytes int64 = 2 << 30
	// DefaultDownloadAttemptTimeout bounds one download attempt (request and body); a
	// timed-out attempt is retried and resumes where the server allows it.
	DefaultDownloadAttemptTimeout = 5 * time.Minute
)

// Download errors. A failed download is a *DownloadError that matches the relevant ones.
var (
	// ErrHostNotAllowed: the URL (or a redirect) is not http(s), or its host resolves to a
	// loopback, link-local, private, unspecified, multicast or otherwise reserved address.
	ErrHostNotAllowed = errors.New("runway: download host not allowed")
	// ErrTooLarge: the file is larger than the WithMaxBytes cap.
	ErrTooLarge = errors.New("runway: download larger than the size limit")
	// ErrIncomplete: the byte count did not match Content-Length or Content-Range after the
	// retries, or a response contradicted the size announced earlier.
	ErrIncomplete = errors.New("runway: download incomplete")
	// ErrPartialWrite: bytes were already written to a writer that cannot be rewound when the
	// download had to restart from zero (the server ignored Range). The writer holds partial data.
	ErrPartialWrite = errors.New("runway: partial data written and the writer cannot be rewound")
	// ErrSaveQueueFull: SaveQueue.Enqueue found the queue full.
	ErrSaveQueueFull = errors.New("runway: save queue full")
	// ErrSaveQueueClosed: SaveQueue.Enqueue was called after Close.
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
	fmt.Fprintf(&b, "runway: download %s%s", e.Host, e.Path)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Written > 0 {
		fmt.Fprintf(&b, " (%d bytes written)", e.Written)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
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
// options only with the With* functions.
type DownloadOption struct {
	apply func(*downloadConfig)
}

type downloadConfig struct {
	allowPrivate   bool
	maxBytes       int64
	progress       func(done, total int64)
	attemptTimeout time.Duration
	retries        int
	onSaved        func(r *Result, saved SavedFiles, err error)
}

// WithAllowPrivateHosts lets downloads reach loopback, link-local and private addresses
// (local test servers, a storage host on your own network). Without it such hosts are
// refused, so a forged callback cannot make your server fetch its own metadata endpoint.
func WithAllowPrivateHosts() DownloadOption {
	return DownloadOption{func(c *downloadConfig) { c.allowPrivate = true }}
}

// WithMaxBytes caps the size of one file (default DefaultMaxDownloadBytes). A larger
// announced size fails before any byte is written; a body that grows past the cap fails
// when it does. n <= 0 keeps the default.
func WithMaxBytes(n int64) DownloadOption {
	return DownloadOption{func(c *downloadConfig) {
		if n > 0 {
			c.maxBytes = n
		}
	}}
}

// WithDownloadProgress calls fn as bytes arrive, from the downloading goroutine: keep it fast.
// done never decreases (a restart from zero is not reported until it passes the previous
// count); total is -1 while unknown; the last call has done == total. SaveResult reports the
// video and the cover together, serialised.
func WithDownloadProgress(fn func(done, total int64)) DownloadOption {
	return DownloadOption{func(c *downloadConfig) { c.progress = fn }}
}

// WithAttemptTimeout bounds each attempt, from the request to the last byte (default
// DefaultDownloadAttemptTimeout); a timed-out attempt is retried and resumes if the server
// supports ranges. With a server that does not resume, the bound must cover the whole file.
// d <= 0 means no per-attempt bound: only ctx limits the download.
func WithAttemptTimeout(d time.Duration) DownloadOption {
	return DownloadOption{func(c *downloadConfig) { c.attemptTimeout = d }}
}

// WithDownloadRetries sets how many failed attempts in a row are retried (default: the
// client's WithMaxRetries). An attempt that brings new bytes resets the count, so a long
// download over a flaky link is not abandoned while it progresses. n < 0 keeps the default.
func WithDownloadRetries(n int) DownloadOption {
	return DownloadOption{func(c *downloadConfig) {
		if n >= 0 {
			c.retries = n
		}
	}}
}

// WithOnSaved is called after every SaveResult (also those run by SaveResultFunc and
// SaveQueue) with what was saved and the error, if any. It is the way to learn about failures
// of a SaveQueue's background saves.
func WithOnSaved(fn func(r *Result, saved SavedFiles, err error)) DownloadOption {
	return DownloadOption{func(c *downloadConfig) { c.onSaved = fn }}
}

func (c *Client) downloadConfig(opts []DownloadOption) downloadConfig {
	cfg := downloadConfig{
		maxBytes:       DefaultMaxDownloadBytes,
		attemptTimeout: DefaultDownloadAttemptTimeout,
		retries:        c.maxRetries,
	}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&cfg)
		}
	}
	return cfg
}

// Download streams fileURL into w and returns the number of bytes written.
//
// The request goes through the client's HTTP transport but carries no Authorization header
// or API key, also after redirects. Only http(s) URLs are fetched, and unless
// WithAllowPrivateHosts is given, the address actually dialled (checked at connect time, so
// DNS rebinding cannot bypass it) must not be loopback, link-local, private, unspecified,
// multicast or reserved. With the check on, proxies from the client's transport are not used,
// since the dialled address must be the file host's.
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
// ctx bounds the whole download, waits included.
//
// A 403, 404 or 410 is answered once by fetching a fresh link through DownloadURL(fileURL)
// and retrying with it; the fresh link is a credential and appears in no error or log.
// Errors are *DownloadError and name the host and path only.
func (c *Client) Download(ctx context.Context, fileURL string, w io.Writer, opts ...DownloadOption) (int64, error) {
	d := c.newDownload(fileURL, w, c.downloadConfig(opts))
	return d.run(ctx)
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
	hc, done := d.c.downloadClient(d.cfg.allowPrivate)
	defer done()
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
			return d.written, d.fail(d.cur, ctx.Err())
		}
		switch {
		case ae.refresh && !d.refreshed:
			d.refreshed = true
			fresh, err := d.c.DownloadURL(ctx, d.origURL)
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
			slog.Int("attempt", failures), slog.Int64("written", d.written),
			slog.Duration("wait", wait), slog.String("reason", ae.err.Error()))
		if err := d.c.sleep(ctx, wait); err != nil {
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
		return &attemptError{err: err, retry: !errors.Is(err, ErrHostNotAllowed) && !errors.As(err, &certErr)}
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
	case http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return &attemptError{err: errors.New(httpStatusText(resp.StatusCode)), refresh: true}
	default:
		ae := &attemptError{err: errors.New(httpStatusText(resp.StatusCode))}
		sc := resp.StatusCode
		ae.retry = sc == http.StatusRequestTimeout || sc == http.StatusTooManyRequests ||
			(sc >= 500 && sc != http.StatusNotImplemented)
		ae.retryAfter = retryAfterFrom(resp, d.c.now())
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

// checkURL parses raw and applies the scheme and host-name checks; the dial-time check on
// the resolved address is done by the transport from downloadClient.
func checkURL(raw string, allowPrivate bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid URL: %w", ErrHostNotAllowed, redactURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return u, fmt.Errorf("%w: scheme %q is not http or https", ErrHostNotAllowed, printable(u.Scheme, 16))
	}
	if u.Hostname() == "" {
		return u, fmt.Errorf("%w: URL has no host", ErrHostNotAllowed)
	}
	if allowPrivate {
		return u, nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return u, fmt.Errorf("%w: %s", ErrHostNotAllowed, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil && blockedAddr(ip) {
		return u, fmt.Errorf("%w: %s is not a public address", ErrHostNotAllowed, ip)
	}
	return u, nil
}

// reservedPrefixes are non-public IPv4 ranges that netip has no predicate for.
var reservedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT (also some cloud metadata)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("::ffff:0:0/96"),   // mapped (checked after Unmap; kept for safety)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
}

// blockedAddr reports whether ip is not a public unicast address.
func blockedAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsPrivate() || ip.IsUnspecified() {
		return true
	}
	for _, p := range reservedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// dialControl refuses connections to non-public addresses; it runs after DNS resolution, on
// the address actually dialled.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address", ErrHostNotAllowed)
	}
	if blockedAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrHostNotAllowed, ap.Addr())
	}
	return nil
}

// downloadClient returns an HTTP client for file hosts, on the client's transport, and a
// func that releases its idle connections. Redirects are re-checked and, since requests are
// built by hand, carry no credentials.
func (c *Client) downloadClient(allowPrivate bool) (*http.Client, func()) {
	rt := c.hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	release := func() {}
	if t, ok := rt.(*http.Transport); ok {
		t = t.Clone()
		if !allowPrivate {
			// Dial the file host directly so that the address checked is the host's own.
			dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: dialControl}
			t.Proxy = nil
			t.DialContext = dialer.DialContext
			t.DialTLSContext = nil
		}
		rt = t
		release = t.CloseIdleConnections
	} else if !allowPrivate {
		rt = resolvingTransport{rt}
	}
	hc := &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if _, err := checkURL(req.URL.String(), allowPrivate); err != nil {
				return err
			}
			req.Header.Del("Authorization")
			req.Header.Del("Cookie")
			return nil
		},
	}
	return hc, release
}

// resolvingTransport guards a RoundTripper that is not an *http.Transport, where no dial hook
// can be installed: it resolves the host and refuses non-public addresses before the request.
// This is weaker than the dial-time check (the transport resolves again), which is why the
// client's own *http.Transport is preferred.
type resolvingTransport struct{ next http.RoundTripper }

func (t resolvingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(req.Context(), "ip", req.URL.Hostname())
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if blockedAddr(a) {
			return nil, fmt.Errorf("%w: %s is not a public address", ErrHostNotAllowed, a)
		}
	}
	return t.next.RoundTrip(req)
}

// SavedFiles are the paths SaveResult wrote (or found already complete). ImagePath is empty
// when the result has no cover.
type SavedFiles struct {
	VideoPath, ImagePath string
}

// SaveResult downloads a successful result's video and cover, concurrently, into dir
// (created if missing) as <task id><ext> and <task id>-cover<ext>. The task id is sanitised
// into a file name that cannot leave dir; the extension comes from the URL path, else the
// Content-Type, else .mp4 / .jpg.
//
// Each file is written to a hidden temporary file in dir, synced, renamed to its final name
// and the directory synced, so a crash or failure never leaves a partial file under the final
// name (at worst a ".*.part" temp file after a crash). A file already present under its final
// name is kept and not fetched again, so re-running after a completed save does no network
// work. A failed result, or one without a video URL, is an error and nothing is written.
// If one file fails the other is still saved; the error joins the failures and SavedFiles
// names what was saved. Downloads behave as in Download; progress covers both files.
func (c *Client) SaveResult(ctx context.Context, r *Result, dir string, opts ...DownloadOption) (SavedFiles, error) {
	cfg := c.downloadConfig(opts)
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
	base, err := fileBase(r.TaskID)
	if err != nil {
		return SavedFiles{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SavedFiles{}, fmt.Errorf("runway: save task %s: %w", r.TaskID, err)
	}
	jobs := []saveJob{{url: r.VideoURL, name: base, exts: videoExts, def: ".mp4", taskID: r.TaskID}}
	if r.ImageURL != "" {
		jobs = append(jobs, saveJob{url: r.ImageURL, name: base + "-cover", exts: imageExts, def: ".jpg", taskID: r.TaskID})
	}
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
		return saved, fmt.Errorf("runway: save task %s: %w", r.TaskID, err)
	}
	if err := syncDir(dir); err != nil {
		return saved, fmt.Errorf("runway: save task %s: sync dir: %w", r.TaskID, err)
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
		return fmt.Errorf("runway: save: %w", err)
	}
	if r.VideoURL == "" {
		return fmt.Errorf("runway: save task %s: result has no video URL", printable(r.TaskID, 128))
	}
	return nil
}

type saveJob struct {
	url, name string
	exts      []string // extensions accepted from the URL path
	def       string   // extension when neither URL nor Content-Type tells
	taskID    string   // for the observer
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
	candidates := []string{ext}
	if ext == "" {
		candidates = job.exts
	}
	for _, e := range candidates {
		p := filepath.Join(dir, job.name+e)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil // saved by an earlier run
		}
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
	if ext == "" {
		ext = typeExts[d.mediaType]
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

// maxFileBase bounds the name derived from a task id, well under common 255-byte limits.
const maxFileBase = 100

// fileBase turns a task id into a file name that stays inside its directory: only ASCII
// letters, digits, '-', '_' and (not leading) '.' are kept. An id that had to be changed gets a
// hash suffix, so two different ids never share a name.
func fileBase(taskID string) (string, error) {
	if err := validTaskID("TaskID", taskID); err != nil {
		return "", fmt.Errorf("runway: save: %w", err)
	}
	var b strings.Builder
	for i := 0; i < len(taskID) && b.Len() < maxFileBase; i++ {
		ch := taskID[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
			b.WriteByte(ch)
		case ch == '.' && b.Len() > 0:
			b.WriteByte(ch)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name != taskID {
		sum := sha256.Sum256([]byte(taskID))
		name += "-" + hex.EncodeToString(sum[:6])
	}
	return name, nil
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
func (c *Client) SaveResultFunc(dir string, opts ...DownloadOption) func(ctx context.Context, r *Result) error {
	return func(ctx context.Context, r *Result) error {
		if r != nil && r.Err() != nil {
			return nil
		}
		_, err := c.SaveResult(ctx, r, dir, opts...)
		return err
	}
}

// SaveQueue saves results in the background with a fixed number of workers and a bounded
// queue, so a callback handler can hand a result over and answer Kie within its 15 s budget:
// pass q.Enqueue to WithResultFunc. Saves run under the queue's own context, not the
// callback request's. Report failures with WithOnSaved; they are also logged at error level.
// A result lost in a crash before it was saved is not retried by Kie (it got its 200), so
// pair the queue with a periodic sweep (GetTask + SaveResult) if every file must be kept.
type SaveQueue struct {
	c    *Client
	dir  string
	opts []DownloadOption

	jobs   chan *Result
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

// NewSaveQueue starts workers goroutines that save results into dir, with room for capacity
// waiting results. Both must be at least 1. Call Close to drain and stop the workers.
func NewSaveQueue(c *Client, dir string, workers, capacity int, opts ...DownloadOption) (*SaveQueue, error) {
	if c == nil {
		return nil, errors.New("runway: NewSaveQueue: nil client")
	}
	if dir == "" {
		return nil, errors.New("runway: NewSaveQueue: empty directory")
	}
	if workers < 1 || capacity < 1 {
		return nil, fmt.Errorf("runway: NewSaveQueue: need workers >= 1 and capacity >= 1, got %d, %d", workers, capacity)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &SaveQueue{
		c: c, dir: dir, opts: opts,
		jobs: make(chan *Result, capacity), ctx: ctx, cancel: cancel,
	}
	for range workers {
		q.wg.Go(q.work)
	}
	return q, nil
}

func (q *SaveQueue) work() {
	for r := range q.jobs {
		if _, err := q.c.SaveResult(q.ctx, r, q.dir, q.opts...); err != nil {
			q.c.logger.LogAttrs(q.ctx, slog.LevelError, "runway: background save failed",
				slog.String("taskId", printable(r.TaskID, 128)), slog.String("error", err.Error()))
		}
	}
}

// Enqueue hands r to the workers without waiting. A failed task is skipped (nil). It returns
// ErrSaveQueueFull when the queue is full (the callback handler then answers 5xx and Kie
// retries later), ErrSaveQueueClosed after Close, and an error for a result with nothing to
// save. ctx is only checked, since the save outlives the caller.
func (q *SaveQueue) Enqueue(ctx context.Context, r *Result) error {
	if r != nil && r.Err() != nil {
		return nil
	}
	if err := checkSavable(r); err != nil {
		return err
	}
	if _, err := fileBase(r.TaskID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrSaveQueueClosed
	}
	select {
	case q.jobs <- r:
		return nil
	default:
		return fmt.Errorf("%w (task %s)", ErrSaveQueueFull, printable(r.TaskID, 128))
	}
}

// Close stops accepting results and waits for the queued ones to be saved. If ctx ends first,
// the saves in progress are cancelled (their temp files removed), the rest are dropped, and
// Close returns ctx's error once the workers have stopped. Close may be called more than once.
func (q *SaveQueue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return ctx.Err()
	}
}
