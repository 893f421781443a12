package runway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Known answers computed independently of this package:
//
//	printf '%s' 'ee603959-debb-48d1-98c4-a6d1c717eba6.1769670760' |
//		openssl dgst -sha256 -hmac 'kie-test-hmac-key-1' -binary | base64
//	printf '%s' 'ee9c2715375b7837f8bb51d641ff5863.1769670760' |
//		openssl dgst -sha256 -hmac 'kie-test-hmac-key-2' -binary | base64
const (
	knownSig1 = "14MVWEnEJcw299ciCvq56iXhuVPEsBWeCO+VLw1Gkic="
	knownSig2 = "pM57Rt36aD6A13yTJbeSEqquV78W/YVBHn8czH8zBys="
)

// TestSignatureKnownAnswer pins CB-13 of SECURITY.md.
func TestSignatureKnownAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, id, want string }{
		{testKey1, testID, knownSig1},
		{testKey2, "ee9c2715375b7837f8bb51d641ff5863", knownSig2},
	}
	for _, tc := range tests {
		ts, sig := SignCallback(tc.key, tc.id, testNow)
		require.Equal(t, testNowTS, ts)
		require.Equal(t, tc.want, sig)
		require.NoError(t, VerifySignature(tc.key, tc.id, ts, tc.want, testNow, 0))
	}
}

// TestVerifySignature pins CB-13 of SECURITY.md.
func TestVerifySignature(t *testing.T) {
	t.Parallel()
	tol := 5 * time.Minute
	tests := []struct {
		name     string
		key      string
		id       string
		ts       string
		sig      string
		tol      time.Duration
		want     error // nil means accepted
		wantText string
	}{
		{name: "valid", key: testKey1, id: testID, ts: testNowTS, sig: knownSig1, tol: tol},
		{name: "valid, default tolerance", key: testKey1, id: testID, ts: testNowTS, sig: knownSig1},
		{name: "valid, unpadded", key: testKey1, id: testID, ts: testNowTS, sig: strings.TrimRight(knownSig1, "="), tol: tol},
		{name: "no key", key: "", id: testID, ts: testNowTS, sig: knownSig1, tol: tol, want: ErrInvalidSignature},
		{name: "no timestamp", key: testKey1, id: testID, ts: "", sig: knownSig1, tol: tol, want: ErrMissingSignature},
		{name: "no signature", key: testKey1, id: testID, ts: testNowTS, sig: "", tol: tol, want: ErrMissingSignature},
		{name: "wrong key", key: testKey2, id: testID, ts: testNowTS, sig: knownSig1, tol: tol, want: ErrInvalidSignature},
		{name: "other task", key: testKey1, id: "other", ts: testNowTS, sig: knownSig1, tol: tol, want: ErrInvalidSignature},
		{name: "url-safe alphabet", key: testKey1, id: testID, ts: testNowTS, sig: strings.NewReplacer("+", "-", "/", "_").Replace(knownSig1), tol: tol, want: ErrInvalidSignature},
		{name: "truncated", key: testKey1, id: testID, ts: testNowTS, sig: knownSig1[:40], tol: tol, want: ErrInvalidSignature},
		{name: "oversized", key: testKey1, id: testID, ts: testNowTS, sig: strings.Repeat(knownSig1, 4), tol: tol, want: ErrInvalidSignature},
		{name: "garbage", key: testKey1, id: testID, ts: testNowTS, sig: "!!!", tol: tol, want: ErrInvalidSignature},
		{name: "ts letters", key: testKey1, id: testID, ts: "abc", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange, wantText: "malformed"},
		{name: "ts float", key: testKey1, id: testID, ts: "1.7e9", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange},
		{name: "ts negative", key: testKey1, id: testID, ts: "-1", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange},
		{name: "ts overflow", key: testKey1, id: testID, ts: "9223372036854775808", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange},
		{name: "ts 20 digits", key: testKey1, id: testID, ts: "10000000000000000000", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange},
		{name: "ts space", key: testKey1, id: testID, ts: testNowTS + " ", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange},
		{name: "too old", key: testKey1, id: testID, ts: "1769670459", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange, wantText: "too old"},
		{name: "too new", key: testKey1, id: testID, ts: "1769671061", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange, wantText: "in the future"},
		{name: "milliseconds", key: testKey1, id: testID, ts: "1769670760000", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange, wantText: "milliseconds"},
		{name: "max int64 seconds", key: testKey1, id: testID, ts: "9223372036854775807", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange, wantText: "in the future"},
		{name: "zero", key: testKey1, id: testID, ts: "0", sig: knownSig1, tol: tol, want: ErrTimestampOutOfRange, wantText: "too old"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := VerifySignature(tc.key, tc.id, tc.ts, tc.sig, testNow, tc.tol)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), tc.wantText)
			require.NotContains(t, err.Error(), testKey1)
		})
	}
}

// TestCheckTimestampFarFuture pins the overflow fix: every timestamp beyond the window, however
// far, is refused (now.Sub saturates there, and negating the saturated minimum overflowed).
// Pins CB-12 of SECURITY.md.
func TestCheckTimestampFarFuture(t *testing.T) {
	t.Parallel()
	for _, ts := range []string{"99999999999", "999999999999", "9999999999999999", "9223372036854775807"} {
		require.ErrorIs(t, checkTimestamp(ts, testNow, time.Minute), ErrTimestampOutOfRange, ts)
	}
}

// TestVerifyMACRotation: any configured key verifies; empty keys are skipped.
// Pins CB-15 of SECURITY.md.
func TestVerifyMACRotation(t *testing.T) {
	t.Parallel()
	keys := []string{"", testKey2, testKey1}
	require.NoError(t, verifyMAC(keys, testID, testNowTS, knownSig1))
	require.ErrorIs(t, verifyMAC([]string{testKey2}, testID, testNowTS, knownSig1), ErrInvalidSignature)
	require.ErrorIs(t, verifyMAC(nil, testID, testNowTS, knownSig1), ErrInvalidSignature)
}

// hmacKeyForm is the key HMAC-SHA256 actually uses: keys longer than the block are hashed and
// shorter ones zero-padded, so distinct strings can be the same HMAC key.
func hmacKeyForm(key string) []byte {
	k := []byte(key)
	if len(k) > sha256.BlockSize {
		s := sha256.Sum256(k)
		k = s[:]
	}
	return bytes.TrimRight(k, "\x00")
}

// FuzzVerifySignature: no panic on any input; a signature made with the key verifies; never
// verifies with a different key; arbitrary header values verify only if they really are the
// MAC of the task id and timestamp.
// Pins CB-11 of SECURITY.md.
func FuzzVerifySignature(f *testing.F) {
	f.Add(testKey1, testKey2, testID, int64(1769670760), testNowTS, knownSig1)
	f.Add("k", "k\x00", "t", int64(0), "abc", "!!!")
	f.Add("", "x", "", int64(-1), "-1", "")
	f.Add(strings.Repeat("k", 65), "y", "id", int64(1<<40), "1769670760000", strings.TrimRight(knownSig1, "="))
	f.Fuzz(func(t *testing.T, key, otherKey, taskID string, unix int64, ts, sig string) {
		now := time.Unix(unix, 0)
		// Arbitrary headers: accepted only when genuinely signed.
		if err := VerifySignature(key, taskID, ts, sig, now, time.Minute); err == nil {
			got, derr := base64.StdEncoding.DecodeString(sig)
			if derr != nil {
				got, derr = base64.RawStdEncoding.DecodeString(sig)
			}
			require.NoError(t, derr)
			m := hmac.New(sha256.New, []byte(key))
			m.Write([]byte(taskID + "." + ts))
			require.True(t, hmac.Equal(got, m.Sum(nil)), "verified a signature that is not the MAC")
		}
		if key == "" || unix < 0 || unix > maxUnixSeconds {
			return // no key, or a clock SignCallback cannot express as Kie's timestamp
		}
		sts, ssig := SignCallback(key, taskID, now)
		require.NoError(t, VerifySignature(key, taskID, sts, ssig, now, time.Minute))
		if !bytes.Equal(hmacKeyForm(key), hmacKeyForm(otherKey)) {
			require.Error(t, VerifySignature(otherKey, taskID, sts, ssig, now, time.Minute))
		}
	})
}
