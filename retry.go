package runway

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Default retry backoff bounds.
const (
	DefaultRetryWaitMin = 1 * time.Second
	DefaultRetryWaitMax = 30 * time.Second
	DefaultMaxRetries   = 4
)

// maxRetryAfter is the largest duration parseRetryAfter returns; longer hints are clamped
// to it (the client then caps the wait again at its own backoff maximum).
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter parses a Retry-After header value, delay-seconds or an HTTP date relative
// to now, clamped to [0, maxRetryAfter]. It returns false for an empty, malformed, negative or
// past value, so the caller falls back to its own backoff.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(value)
	if v == "" || len(v) > 64 {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0, false
			}
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			// Only digits, so a range error means "very long": clamp, do not reject.
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if !t.After(now) {
		return 0, false
	}
	if t.After(now.Add(maxRetryAfter)) {
		return maxRetryAfter, true
	}
	return t.Sub(now), true
}

// backoff returns the wait before retry number attempt (0-based): full jitter over an
// exponential window [min, min*2^attempt] capped at max, or the server's Retry-After when it is
// usable, itself capped at max.
func backoff(min, max time.Duration, attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		if retryAfter > max {
			return max
		}
		return retryAfter
	}
	ceil := min
	for i := 0; i < attempt && ceil < max; i++ {
		if ceil > max/2 {
			ceil = max
			break
		}
		ceil *= 2
	}
	if ceil > max {
		ceil = max
	}
	if ceil <= min {
		return min
	}
	return min + rand.N(ceil-min+1)
}

// sleepCtx waits for d or until ctx is done, always stopping its timer.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryAfterFrom reads a usable Retry-After from resp, or 0.
func retryAfterFrom(resp *http.Response, now time.Time) time.Duration {
	if resp == nil {
		return 0
	}
	d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now)
	if !ok {
		return 0
	}
	return d
}

// notSent reports whether a transport error certainly happened before any byte of the request
// reached the server: DNS failures and refused connections while dialling. It complements the
// connection trace in Client.do, which also catches timeouts while dialling.
func notSent(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET)
}
