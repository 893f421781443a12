package runway

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata golden files")

// policyCodes are the body codes the table is checked with: none, success, every code Kie
// documents or sends, and a few it does not.
var policyCodes = []int{0, 200, 201, 400, 401, 402, 403, 404, 408, 410, 422, 429, 451, 455,
	500, 501, 502, 503, 504, 505, 599, 600, 999}

// policyOracle states the retry rules as the README and the error docs give them, one kind at
// a time and without sharing code with decide, so the table is checked against an
// independent reading of the same rules.
func policyOracle(k reqKind, a answer, sent bool) verdict {
	if k == kindDownload {
		s := a.status
		switch {
		case s == 0:
			return verdictRetry
		case s == 200 || s == 206:
			return verdictDone
		case s == 403 || s == 404 || s == 410:
			return verdictRefresh
		case s == 416 || s == 408 || s == 429 || (s >= 500 && s != 501):
			return verdictRetry
		}
		return verdictGiveUp
	}
	if a.status == 0 { // transport error
		if k == kindSubmit && sent {
			return verdictMayExist
		}
		return verdictRetry
	}
	if a.status >= 200 && a.status < 300 && a.code == 200 && !a.notFound {
		return verdictDone
	}
	code := a.status
	if a.code != 0 && a.code != 200 {
		code = a.code
	}
	envelopeMissing := a.code == 0 && a.status >= 200 && a.status < 300
	safeRetryable := code == 408 || code == 429 || code == 455 ||
		(code >= 500 && code <= 599 && code != 501 && code != 505)
	switch k {
	case kindSubmit:
		if code == 429 {
			return verdictRetry
		}
		if code == 408 || (code >= 500 && code != 505) || envelopeMissing {
			return verdictMayExist
		}
		return verdictGiveUp
	case kindPoll:
		if a.notFound || code == 404 {
			return verdictNotFound
		}
		if envelopeMissing || safeRetryable {
			return verdictRetry
		}
		return verdictGiveUp
	default:
		if !a.notFound && safeRetryable {
			return verdictRetry
		}
		return verdictGiveUp
	}
}

// TestDecisionTableExhaustive checks every status 100-599 (and no answer) x body code x
// not-found flag x kind x sent against the oracle.
func TestDecisionTableExhaustive(t *testing.T) {
	t.Parallel()
	n := 0
	for k := range reqKind(numReqKinds) {
		for status := 0; status <= 599; status++ {
			if status > 0 && status < 100 {
				continue
			}
			for _, code := range policyCodes {
				for _, nf := range []bool{false, true} {
					for _, sent := range []bool{false, true} {
						a := answer{status: status, code: code, notFound: nf}
						got, want := decide(k, a, sent), policyOracle(k, a, sent)
						if got != want {
							t.Fatalf("decide(%s, status %d, code %d, notFound %v, sent %v) = %s, want %s",
								k, status, code, nf, sent, got, want)
						}
						n++
					}
				}
			}
		}
	}
	require.Equal(t, numReqKinds*501*len(policyCodes)*4, n)
}

// TestDecisionTableGolden renders the table as runs of statuses per kind, body code and sent
// (not-found only where it changes anything) and compares it with testdata/policy.golden, a
// file a reviewer can read: any change to the rules shows up there as a diff. Regenerate
// with go test -run TestDecisionTableGolden -update.
func TestDecisionTableGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("# kind  body-code  sent  not-found  statuses -> verdict\n")
	b.WriteString("# status 0 = no answer (transport error); body code 0 = no usable envelope.\n")
	b.WriteString("# done: a success; a call that failed anyway (unusable data) gives up.\n")
	for k := range reqKind(numReqKinds) {
		codes := policyCodes
		if k == kindDownload {
			codes = []int{0} // file hosts send no envelope
		}
		for _, code := range codes {
			for _, sent := range []bool{false, true} {
				if !sent && k != kindSubmit {
					continue // sent matters only for submissions
				}
				for _, nf := range []bool{false, true} {
					if nf && k == kindDownload {
						continue
					}
					writeRuns(&b, k, code, sent, nf)
				}
			}
		}
	}
	path := filepath.Join("testdata", "policy.golden")
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String(), "the decision table changed; review and rerun with -update")
}

func writeRuns(b *strings.Builder, k reqKind, code int, sent, nf bool) {
	statuses := []int{0}
	for s := 100; s <= 599; s++ {
		statuses = append(statuses, s)
	}
	start := statuses[0]
	cur := decide(k, answer{status: start, code: code, notFound: nf}, sent)
	flush := func(end int) {
		rng := fmt.Sprint(start)
		if end != start {
			rng = fmt.Sprintf("%d-%d", start, end)
		}
		fmt.Fprintf(b, "%-8s %3d %-5v %-5v %-8s %s\n", k, code, sent, nf, rng, cur)
	}
	prev := start
	for _, s := range statuses[1:] {
		v := decide(k, answer{status: s, code: code, notFound: nf}, sent)
		if v != cur || s != prev+1 {
			flush(prev)
			start, cur = s, v
		}
		prev = s
	}
	flush(prev)
}

// TestDecisionTableConsulted checks that the places which answer "retry or not" agree with the
// table: APIError.Retryable, the submission's may-exist flag, and the API client's CheckRetry
// hook for both kinds of call, answers and transport errors.
func TestDecisionTableConsulted(t *testing.T) {
	t.Parallel()
	c, err := NewClient(testKey)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	check := func(kind reqKind, connected bool, err error) bool {
		st := &callState{kind: kind, maxRetries: 1}
		st.connected.Store(connected)
		retry, got := c.checkRetry(withCallState(t.Context(), st), nil, err)
		require.Same(t, err, got, "the failure is returned as is")
		return retry
	}
	for status := 100; status <= 599; status++ {
		for _, code := range policyCodes {
			ae := &APIError{StatusCode: status, Code: code}
			a := answer{status: status, code: code}
			require.Equal(t, decide(kindRead, a, true) == verdictRetry, ae.Retryable(), "Retryable %d/%d", status, code)
			require.Equal(t, decide(kindSubmit, a, true) == verdictMayExist, ae.mayHaveCreated(), "mayHaveCreated %d/%d", status, code)
			if code == 200 && status/100 == 2 {
				continue // a success is never an error handed to CheckRetry
			}
			require.Equal(t, decide(kindRead, a, true) == verdictRetry, check(kindRead, true, ae), "read %d/%d", status, code)
			require.Equal(t, decide(kindSubmit, a, true) == verdictRetry, check(kindSubmit, true, ae), "submit %d/%d", status, code)
		}
	}
	require.True(t, check(kindSubmit, false, os.ErrDeadlineExceeded), "a submission that never connected is repeated")
	require.False(t, check(kindSubmit, true, os.ErrDeadlineExceeded), "one that may have arrived is not")
	require.True(t, check(kindRead, true, os.ErrDeadlineExceeded))
}
