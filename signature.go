package runway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
)

// Callback signature errors, returned by VerifySignature (wrapped) and logged by the handler.
var (
	// ErrMissingSignature: X-Webhook-Signature or X-Webhook-Timestamp is absent or empty.
	ErrMissingSignature = errors.New("runway: missing callback signature")
	// ErrInvalidSignature: the signature is malformed or does not match any key.
	ErrInvalidSignature = errors.New("runway: invalid callback signature")
	// ErrTimestampOutOfRange: the timestamp is malformed or outside the tolerance window
	// (too old or too new; check the server clock).
	ErrTimestampOutOfRange = errors.New("runway: callback timestamp out of range")
)

// Header names Kie uses for signed callbacks.
const (
	HeaderWebhookTimestamp = "X-Webhook-Timestamp"
	HeaderWebhookSignature = "X-Webhook-Signature"
)

// maxTimestampLen bounds the timestamp header. Unix seconds fit in 10 digits until 2286; up to
// 19 digits are parsed so that a millisecond (13-digit) value is reported as "in the future"
// rather than as malformed, which points an operator at the right fix.
const maxTimestampLen = 19

// maxUnixSeconds is 9999-12-31T23:59:59Z.
const maxUnixSeconds = 253402300799

// maxSignatureLen bounds the signature header (a SHA-256 digest is 44 base64 characters).
const maxSignatureLen = 128

// SignCallback computes Kie's callback headers for taskID at ts:
// base64(HMAC-SHA256(key, taskID + "." + timestamp)). Use it to test your own handler.
func SignCallback(key, taskID string, ts time.Time) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, base64.StdEncoding.EncodeToString(computeMAC(key, taskID, timestamp))
}

func computeMAC(key, taskID, timestamp string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(taskID))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	return m.Sum(nil)
}

// parseTimestamp accepts only a plain decimal Unix-seconds value.
func parseTimestamp(timestamp string) (time.Time, error) {
	if len(timestamp) == 0 || len(timestamp) > maxTimestampLen {
		return time.Time{}, fmt.Errorf("%w: malformed timestamp", ErrTimestampOutOfRange)
	}
	for i := 0; i < len(timestamp); i++ {
		if timestamp[i] < '0' || timestamp[i] > '9' {
			return time.Time{}, fmt.Errorf("%w: malformed timestamp", ErrTimestampOutOfRange)
		}
	}
	n, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: malformed timestamp", ErrTimestampOutOfRange)
	}
	if n > maxUnixSeconds {
		// time.Unix wraps around for values near the int64 limit and would read as the past.
		return time.Time{}, fmt.Errorf("%w: after the year 9999, in the future (a 13-digit value is milliseconds, Kie sends seconds)", ErrTimestampOutOfRange)
	}
	return time.Unix(n, 0), nil
}

// checkTimestamp enforces a two-sided window: a timestamp too far in the past is a replay, one
// too far in the future is a skewed clock or a millisecond value. tolerance <= 0 means
// DefaultCallbackTolerance. The bounds are compared as times, not as now.Sub(ts): that
// difference saturates for far-away timestamps and negating the saturated minimum overflows,
// which would let a far-future timestamp through.
func checkTimestamp(timestamp string, now time.Time, tolerance time.Duration) error {
	ts, err := parseTimestamp(timestamp)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultCallbackTolerance
	}
	if ts.Before(now.Add(-tolerance)) {
		return fmt.Errorf("%w: %s too old (tolerance %s)", ErrTimestampOutOfRange, now.Sub(ts).Truncate(time.Second), tolerance)
	}
	if ts.After(now.Add(tolerance)) {
		return fmt.Errorf("%w: %s in the future (tolerance %s; a 13-digit value is milliseconds, Kie sends seconds)",
			ErrTimestampOutOfRange, ts.Sub(now).Truncate(time.Second), tolerance)
	}
	return nil
}

// verifyMAC checks signature (standard base64 with padding; unpadded is tolerated) against
// every key in constant time per key.
func verifyMAC(keys []string, taskID, timestamp, signature string) error {
	return verifyMACKeys(newMACKeys(keys), taskID, timestamp, signature)
}

// verifyMACKeys is verifyMAC with keys prepared by newMACKeys (the handler prepares them once).
func verifyMACKeys(keys []*macKey, taskID, timestamp, signature string) error {
	if signature == "" {
		return ErrMissingSignature
	}
	if len(signature) > maxSignatureLen {
		return fmt.Errorf("%w: signature too long", ErrInvalidSignature)
	}
	// Decoded on the stack: the signature is at most maxSignatureLen bytes.
	var src, dst [maxSignatureLen]byte
	n := copy(src[:], signature)
	got, err := decodeSignature(dst[:], src[:n])
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrInvalidSignature)
	}
	if len(got) != sha256.Size {
		return fmt.Errorf("%w: wrong length", ErrInvalidSignature)
	}
	ok := false
	for _, k := range keys {
		if k.equal(got, taskID, timestamp) {
			ok = true
		}
	}
	if !ok {
		return ErrInvalidSignature
	}
	return nil
}

// decodeSignature decodes padded standard base64, or unpadded, into dst.
func decodeSignature(dst, src []byte) ([]byte, error) {
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		n, err = base64.RawStdEncoding.Decode(dst, src)
	}
	return dst[:n], err
}

// macKey computes HMAC-SHA256 under one key. hmac.New hashes the key and allocates on every
// call, so keyed states are pooled and reset (which restores the keyed state) instead.
type macKey struct {
	pool sync.Pool // of *macState
}

// macState is one keyed HMAC with a scratch buffer for the message and the sum.
type macState struct {
	h   hash.Hash
	buf []byte
}

// newMACKeys prepares the non-empty keys.
func newMACKeys(keys []string) []*macKey {
	out := make([]*macKey, 0, len(keys))
	for _, k := range keys {
		if k == "" {
			continue
		}
		key := []byte(k)
		m := &macKey{}
		m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
		out = append(out, m)
	}
	return out
}

// equal reports in constant time whether mac is the MAC of taskID "." timestamp.
func (m *macKey) equal(mac []byte, taskID, timestamp string) bool {
	st := m.pool.Get().(*macState)
	defer m.pool.Put(st)
	st.h.Reset()
	st.buf = append(append(append(st.buf[:0], taskID...), '.'), timestamp...)
	st.h.Write(st.buf)
	st.buf = st.h.Sum(st.buf[:0])
	return hmac.Equal(mac, st.buf)
}

// VerifySignature checks a callback's X-Webhook-Signature for taskID and the
// X-Webhook-Timestamp value exactly as received, within tolerance of now (both directions;
// tolerance <= 0 means DefaultCallbackTolerance). The signature covers only the task id and
// timestamp, not the body. Errors match ErrMissingSignature, ErrTimestampOutOfRange or
// ErrInvalidSignature.
func VerifySignature(key, taskID, timestamp, signature string, now time.Time, tolerance time.Duration) error {
	if key == "" {
		return fmt.Errorf("%w: no key configured", ErrInvalidSignature)
	}
	if timestamp == "" || signature == "" {
		return ErrMissingSignature
	}
	if err := checkTimestamp(timestamp, now, tolerance); err != nil {
		return err
	}
	return verifyMAC([]string{key}, taskID, timestamp, signature)
}
