package runway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error text is built here, in one place, for every Error() method of the package: values
// that came from the network (an API message, a response body, a failCode, a callback msg, a
// URL path) are untrusted. They are redacted, bounded and escaped before they reach a string
// that ends up in logs; the error's fields keep them verbatim.

const (
	// errPrefix starts every error text of the package, once.
	errPrefix = "runway: "
	// maxErrValue bounds one untrusted value inside an error text, in bytes.
	maxErrValue = 300
	// redactedMark replaces a secret.
	redactedMark = "[REDACTED]"
)

// secretPatterns match credentials whatever key they belong to: an Authorization-style
// scheme and its token, and the query of any URL (a signed link carries its signature there).
var secretPatterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+)[^\s"',;]+`), "${1}${2}" + redactedMark},
	{regexp.MustCompile(`(?i)\b(https?://[^\s"'?#]*)\?[^\s"'#]*`), "${1}?" + redactedMark},
	{regexp.MustCompile(`(?i)\b((?:api[_-]?key|apikey|hmac[_-]?key|secret|signature|sign|token|x-amz-signature|x-amz-credential)\s*[=:]\s*)[^\s"'&,;]+`), "${1}" + redactedMark},
}

// errText makes an untrusted value safe for an error text: each secret (a key the caller
// knows, such as the API key) and every credential-looking pattern is replaced, control and
// format characters are escaped (\n, \r, \x1b, \u202e), invalid UTF-8 becomes U+FFFD, and the
// result is cut at maxErrValue bytes on a rune boundary, marked with how much was left out.
func errText(s string, secrets ...string) string {
	return errTextMax(s, maxErrValue, secrets...)
}

// maxErrCause bounds the text of a wrapped cause that may carry network values of its own
// (a transport error, a header value), which can hold several bounded values.
const maxErrCause = 4 * maxErrValue

// errCause is the text of a wrapped cause, made safe like errText under a wider bound.
func errCause(err error) string {
	return errTextMax(err.Error(), maxErrCause)
}

// errTextMax is errText with its bound in bytes.
func errTextMax(s string, maxLen int, secrets ...string) string {
	if s == "" {
		return ""
	}
	// Look at a bounded prefix only: the cut happens anyway, and the patterns must not scan a
	// megabyte per Error() call. The known secrets are replaced while the prefix is taken, so
	// one that starts inside it and straddles its end is replaced whole, not cut in two.
	s, cut := redactPrefix(s, 4*maxLen, secrets)
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = "\uFFFD"
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r == '\t':
			piece = `\t`
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			piece = `\x` + strconv.FormatUint(uint64(r)|0x100, 16)[1:]
		case unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			piece = `\u` + strconv.FormatUint(uint64(r)|0x10000, 16)[1:]
		default:
			piece = s[i : i+size]
		}
		if b.Len()+len(piece) > maxLen {
			cut += len(s) - i
			break
		}
		b.WriteString(piece)
		i += size
	}
	if cut > 0 {
		b.WriteString("…[" + strconv.Itoa(cut) + " more bytes]")
	}
	return b.String()
}

// redactPrefix returns the first lim bytes of s with every secret that starts inside them
// replaced by redactedMark (a secret running past lim is replaced whole), and how many bytes
// of s were left out after that.
func redactPrefix(s string, lim int, secrets []string) (string, int) {
	longest := 0
	for _, k := range secrets {
		longest = max(longest, len(k))
	}
	if longest == 0 {
		if len(s) <= lim {
			return s, 0
		}
		return s[:lim], len(s) - lim
	}
	w := s[:min(len(s), lim+longest)]
	var b strings.Builder
	b.Grow(min(len(w), lim))
	i := 0
	for i < len(w) && i < lim {
		at, hit := -1, ""
		for _, k := range secrets {
			if j := strings.Index(w[i:], k); k != "" && j >= 0 && (at < 0 || j < at) {
				at, hit = j, k
			}
		}
		if at < 0 || i+at >= lim {
			b.WriteString(w[i:min(len(w), lim)])
			i = min(len(w), lim)
			break
		}
		b.WriteString(w[i : i+at])
		b.WriteString(redactedMark)
		i += at + len(hit)
	}
	return b.String(), len(s) - i
}

// secretForms are the spellings of a secret to look for in a raw response body: the secret
// itself and its JSON-escaped forms (with and without HTML escaping, and with "/" written
// "\/" as some encoders do).
func secretForms(k string) []string {
	forms := []string{k}
	add := func(f string) {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	for _, html := range []bool{true, false} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(html)
		if enc.Encode(k) != nil {
			continue
		}
		f := strings.TrimSuffix(buf.String(), "\n")
		f = f[1 : len(f)-1]
		add(f)
		add(strings.ReplaceAll(f, "/", `\/`))
	}
	return forms
}

// redactBody returns a copy of a raw response body with every form of each secret replaced,
// cut to at most maxLen bytes after the replacement. When bytes were left out, a tail that
// could be the start of a secret running past the cut (or past what was read) is dropped too.
func redactBody(raw []byte, secrets []string, maxLen int) []byte {
	if len(raw) == 0 {
		return nil
	}
	out := bytes.Clone(raw)
	var forms []string
	for _, k := range secrets {
		if k != "" {
			forms = append(forms, secretForms(k)...)
		}
	}
	// Longest first, so that a form is not half-replaced by a shorter one it contains.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	for _, f := range forms {
		out = bytes.ReplaceAll(out, []byte(f), []byte(redactedMark))
	}
	if len(out) <= maxLen && len(raw) <= maxLen {
		return out
	}
	out = out[:min(len(out), maxLen)]
	trim := 0
	for _, f := range forms {
		for l := min(len(f)-1, len(out)); l > trim; l-- {
			if bytes.HasSuffix(out, []byte(f[:l])) {
				trim = l
				break
			}
		}
	}
	return out[:len(out)-trim]
}

// onePrefix keeps the first "runway: " of an error text and drops the ones that wrapping
// repeats after it (at the start of a line or after ": "), so a message reads
// "runway: NewClient: missing API key", not "runway: NewClient: runway: missing API key".
func onePrefix(s string) string {
	rest, had := strings.CutPrefix(s, errPrefix)
	if !strings.Contains(rest, errPrefix) {
		return s
	}
	rest = strings.ReplaceAll(rest, ": "+errPrefix, ": ")
	rest = strings.ReplaceAll(rest, "\n"+errPrefix, "\n")
	rest = strings.TrimPrefix(rest, errPrefix)
	if had {
		return errPrefix + rest
	}
	return rest
}

// prefixed wraps an error built with fmt.Errorf so that its text has one "runway: " prefix;
// errors.Is and errors.As see through it.
type prefixed struct{ err error }

func (p *prefixed) Error() string { return onePrefix(p.err.Error()) }
func (p *prefixed) Unwrap() error { return p.err }

// errorf is fmt.Errorf with one "runway: " prefix in the result's text.
func errorf(format string, args ...any) error {
	return &prefixed{err: fmt.Errorf(format, args...)}
}

// printable returns s truncated to max bytes with invalid UTF-8 and control characters
// replaced, for short untrusted values in log attributes.
func printable(s string, max int) string {
	var b strings.Builder
	for i, r := range s {
		if i >= max {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError:
			b.WriteRune('�')
		case r < 0x20 || r == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
