package runway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors, matched with errors.Is (also through any wrapping of your own). By group:
//
//   - Local, nothing was sent: ErrMissingAPIKey (NewClient), ErrInvalidRequest (every
//     *ValidationError; also per-call options that cannot work).
//   - Request-level, the API refused a request (an *APIError matches the one for its body
//     code, or its HTTP status): ErrUnauthorized, ErrInsufficientCredits, ErrNotFound,
//     ErrValidation, ErrRateLimited, ErrImageFetch, ErrMaintenance, ErrFeatureDisabled and
//     ErrServer; and ErrOutcomeUnknown, a submission that may have created a task.
//   - Task-failure classes, the task ran and failed (a *TaskError matches ErrTaskFailed and
//     exactly one of): ErrModeration, ErrFormat, ErrQuota, ErrConcurrency, ErrSize,
//     ErrInput, ErrTransient, ErrServer, ErrUnknownFailure.
//   - Wait, a WaitForResult that gave up (a *WaitError): ErrWaitTimeout, ErrUnknownState,
//     or the context's error.
//   - Callbacks: ErrInvalidCallback (ParseCallback, every *CallbackError),
//     ErrMissingSignature, ErrInvalidSignature, ErrTimestampOutOfRange (VerifySignature),
//     and ErrClaimLost for Deduper implementations.
//   - Downloads (a *DownloadError, SaveResult, SaveQueue): ErrHostNotAllowed, ErrTooLarge,
//     ErrIncomplete, ErrPartialWrite, ErrDownloadTimeout, ErrSaveQueueFull,
//     ErrSaveQueueClosed.
//   - Journal: ErrJournal (a submitted task could not be journaled), ErrJournalLocked
//     (NewFileJournal), ErrAbandoned (Reconcile stopped following a task).
var (
	// ErrMissingAPIKey is returned by NewClient when the API key is empty.
	ErrMissingAPIKey = errors.New("runway: missing API key")
	// ErrInvalidRequest matches every *ValidationError: nothing was sent.
	ErrInvalidRequest = errors.New("runway: invalid request")
)

// ErrOutcomeUnknown matches a submission error after which the task may or may not exist
// (a timeout, a reset or a 5xx after the request was sent). The SDK never re-sends such a
// submission, since that could create and bill a second task.
var ErrOutcomeUnknown = errors.New("runway: submission outcome unknown")

// ErrWaitTimeout is what a *WaitError unwraps to when the wait timeout passed.
var ErrWaitTimeout = errors.New("runway: wait timed out")

// ErrTaskFailed matches every *TaskError.
var ErrTaskFailed = errors.New("runway: task failed")

// Task-failure classes. A *TaskError matches exactly one of these, and ErrTaskFailed. An
// *APIError also matches ErrQuota (code 402) and ErrServer (codes 408 and 500-504).
var (
	ErrModeration     = errors.New("runway: content rejected by moderation")
	ErrFormat         = errors.New("runway: unsupported or unreadable input format")
	ErrQuota          = errors.New("runway: plan or credit quota reached")
	ErrConcurrency    = errors.New("runway: concurrent generation limit reached")
	ErrSize           = errors.New("runway: unsupported width or height")
	ErrInput          = errors.New("runway: invalid input")
	ErrTransient      = errors.New("runway: transient failure")
	ErrServer         = errors.New("runway: server error")
	ErrUnknownFailure = errors.New("runway: unclassified failure")
)

// Request-level errors. An *APIError matches the one for its body code, or for its HTTP
// status when the body carries no error code; the codes each matches are in its text.
var (
	// ErrUnauthorized: 401 or 403, a missing or wrong API key (also a download refused with
	// 401/403).
	ErrUnauthorized = errors.New("runway: unauthorized (401/403)")
	// ErrInsufficientCredits: 402, the account has too few credits. Such an error also
	// matches ErrQuota.
	ErrInsufficientCredits = errors.New("runway: insufficient credits (402)")
	// ErrNotFound: no such task (404, and the other answers the details endpoints give for an
	// unknown id: code 422 "The record does not exist", or success with null data), or a
	// download answered 404/410.
	ErrNotFound = errors.New("runway: not found")
	// ErrValidation: 400 or 422, the API refused the request's parameters.
	ErrValidation = errors.New("runway: validation error (400/422)")
	// ErrRateLimited: 429, too many requests (as HTTP status or body code).
	ErrRateLimited = errors.New("runway: rate limited (429)")
	// ErrImageFetch: 451, the API could not fetch the input image.
	ErrImageFetch = errors.New("runway: failed to fetch the image (451)")
	// ErrMaintenance: 455, the service is under maintenance.
	ErrMaintenance = errors.New("runway: service under maintenance (455)")
	// ErrFeatureDisabled: 505, the feature is disabled.
	ErrFeatureDisabled = errors.New("runway: feature disabled (505)")
)

// ErrorKind is the class of a task failure.
type ErrorKind string

// Failure classes, see Classify.
const (
	KindModeration  ErrorKind = "moderation"
	KindFormat      ErrorKind = "format"
	KindQuota       ErrorKind = "quota"
	KindConcurrency ErrorKind = "concurrency"
	KindSize        ErrorKind = "size"
	KindInput       ErrorKind = "input"
	KindTransient   ErrorKind = "transient"
	KindServer      ErrorKind = "server"
	KindUnknown     ErrorKind = "unknown"
)

// sentinel returns the class sentinel (ErrModeration, ...) for k.
func (k ErrorKind) sentinel() error {
	switch k {
	case KindModeration:
		return ErrModeration
	case KindFormat:
		return ErrFormat
	case KindQuota:
		return ErrQuota
	case KindConcurrency:
		return ErrConcurrency
	case KindSize:
		return ErrSize
	case KindInput:
		return ErrInput
	case KindTransient:
		return ErrTransient
	case KindServer:
		return ErrServer
	}
	return ErrUnknownFailure
}

// classRule maps a lower-case message fragment to a class.
type classRule struct {
	fragment string
	kind     ErrorKind
}

// classTable is matched in order, case-insensitively, on substrings: the docs' copies differ
// in trailing punctuation and capitalisation. Every message in the API reference has a row
// (see errors_test.go).
var classTable = []classRule{
	{"inappropriate content", KindModeration},
	{"ai moderator", KindModeration},
	{"nsfw", KindModeration},
	{"incorrect image format", KindFormat},
	{"get image info failed", KindFormat},
	{"upgrade to standard membership", KindQuota},
	{"free trials complete", KindQuota},
	{"insufficient credits", KindQuota},
	{"limit for concurrent generations", KindConcurrency},
	{"unsupported width or height", KindSize},
	{"cannot exceed 2048 characters", KindInput},
	{"failed to fetch the image", KindInput},
	{"upload failed due to network reasons", KindTransient},
}

// Classify maps a failure code and message to a class. Message fragments win over codes;
// code 402 is quota, 451 input, 500/501/408/455 server; anything else is KindUnknown.
func Classify(code int, message string) ErrorKind {
	if message != "" {
		lower := strings.ToLower(message)
		for _, r := range classTable {
			if strings.Contains(lower, r.fragment) {
				return r.kind
			}
		}
	}
	switch code {
	case 402:
		return KindQuota
	case 451:
		return KindInput
	case 408, 455, 500, 501:
		return KindServer
	}
	return KindUnknown
}

// TaskError is a task that ran and failed (a failed task is not a failed request).
type TaskError struct {
	TaskID string
	// Code is the failure code; 0 when the API sent one that is not an integer (see CodeText).
	Code int
	// CodeText is the failure code as the API sent it when it is not an integer (for example
	// "E_MODERATION"), verbatim; empty otherwise.
	CodeText string
	Message  string // the API's text, verbatim
	Kind     ErrorKind

	secrets []string // known secrets kept out of Error(), set by the client
}

// Error names the task, its class, code and the API's message. The message and a textual
// code come from the network: Error shows them redacted, escaped and bounded (the fields keep
// them verbatim).
func (e *TaskError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runway: task %s failed (%s, code %d", errText(e.TaskID), e.Kind, e.Code)
	if e.CodeText != "" {
		fmt.Fprintf(&b, " %q", errText(e.CodeText, e.secrets...))
	}
	b.WriteString(")")
	if e.Message != "" {
		b.WriteString(": " + errText(e.Message, e.secrets...))
	}
	return b.String()
}

// Is matches ErrTaskFailed and the sentinel of the error's Kind.
func (e *TaskError) Is(target error) bool {
	return target == ErrTaskFailed || target == e.Kind.sentinel()
}

// Retryable reports whether submitting the same request again may succeed
// (concurrency, transient and server failures).
func (e *TaskError) Retryable() bool {
	switch e.Kind {
	case KindConcurrency, KindTransient, KindServer:
		return true
	}
	return false
}

// APIError is a request the API refused or could not answer: a non-2xx HTTP status, an
// envelope code other than 200, or a body that is not the expected JSON.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the envelope's body code; 0 when the body had none.
	Code int
	// Message is the envelope's msg (verbatim but for the client's API and HMAC keys, which are
	// removed), or a description of the undecodable body. Error shows it escaped and bounded.
	Message string
	// Method and Path identify the call; the query string is never kept.
	Method, Path string
	// Body is the start of the raw response body (at most 1 MiB read, the client's keys removed).
	Body []byte
	// RetryAfter is the server's Retry-After hint, zero when absent or unusable.
	RetryAfter time.Duration
	// MayExist is true for a submission whose outcome is unknown: the task may have been
	// created (and billed) even though no task id came back. Do not blindly resubmit.
	MayExist bool

	// notFound marks a details lookup that Kie answered with one of its other spellings of
	// "no such task": code 422 "The record does not exist", or code 200 with null data.
	notFound bool
}

// code returns the body code, or the HTTP status when the body carried none (see
// answer.effective, the decision table's reading).
func (e *APIError) code() int { return e.answer().effective() }

// mayHaveCreated reports whether a submission answered with this error may still have created
// a task: a server-side failure after the request arrived, or a 2xx whose body is not the
// API's envelope (a proxy page or cut JSON hides whether the task was created). 455
// (maintenance) and 505 (feature disabled) are refusals, not failures.
func (e *APIError) mayHaveCreated() bool {
	return decide(kindSubmit, e.answer(), true) == verdictMayExist
}

// Error describes the call and the API's answer; it never contains the query string. The
// message and path are shown redacted, escaped and bounded.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runway: %s %s: ", errText(e.Method), errText(e.Path))
	if e.Code != 0 {
		fmt.Fprintf(&b, "code %d", e.Code)
		if e.StatusCode != 0 && e.StatusCode != e.Code {
			fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
		}
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", errText(e.Message))
	}
	if e.notFound {
		b.WriteString(" (task not found)")
	}
	if e.MayExist {
		b.WriteString(" (the task may have been created; check before resubmitting)")
	}
	return onePrefix(b.String())
}

// Is maps the error's code (the body code, else the HTTP status) to the request-level
// sentinels: 401 and 403 ErrUnauthorized; 402 ErrInsufficientCredits and ErrQuota; 404
// ErrNotFound; 400 and 422 ErrValidation; 429 ErrRateLimited; 451 ErrImageFetch; 455
// ErrMaintenance; 505 ErrFeatureDisabled; 408 and 500-504 ErrServer. A details lookup answered
// with Kie's other spellings of "not found" (code 422 "The record does not exist", or success
// with null data) matches ErrNotFound only.
func (e *APIError) Is(target error) bool {
	if e.notFound {
		return target == ErrNotFound
	}
	switch e.code() {
	case 401, 403:
		return target == ErrUnauthorized
	case 402:
		return target == ErrInsufficientCredits || target == ErrQuota
	case 404:
		return target == ErrNotFound
	case 422, 400:
		return target == ErrValidation
	case 429:
		return target == ErrRateLimited
	case 451:
		return target == ErrImageFetch
	case 455:
		return target == ErrMaintenance
	case 505:
		return target == ErrFeatureDisabled
	case 500, 501, 502, 503, 504, 408:
		return target == ErrServer
	}
	return false
}

// Retryable reports whether the same safe request may succeed later: 408, 429, 455 and
// 5xx except 501 and 505.
func (e *APIError) Retryable() bool {
	return decide(kindRead, e.answer(), true) == verdictRetry
}

// ValidationError is a request refused locally before anything was sent.
type ValidationError struct {
	Field, Reason string
}

// Error names the refused field and why.
func (e *ValidationError) Error() string {
	return "runway: invalid request: " + errText(e.Field) + ": " + errText(e.Reason)
}

// Is matches ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// WaitError ends a WaitForResult that gave up: timeout, cancellation or a permanent error.
type WaitError struct {
	TaskID    string
	LastState State // the last state polling saw; empty if none
	Err       error // ErrWaitTimeout, the ctx error, or the error that ended the wait
	// LastErr is the error of the last poll when the wait timed out or was cancelled while
	// polls were failing (for example a task id the API does not know: errors.Is(err,
	// ErrNotFound) then holds beside ErrWaitTimeout); nil otherwise.
	LastErr error
}

// Error names the task, the last state seen (or "not found") and the cause, then the last
// poll error if any.
func (e *WaitError) Error() string {
	ls := "last state " + string(e.LastState)
	switch {
	case e.LastState != "":
	case errors.Is(e.Err, ErrNotFound) || (e.LastErr != nil && errors.Is(e.LastErr, ErrNotFound)):
		ls = "not found"
	default:
		ls = "last state unknown"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "runway: waiting for task %s (%s)", errText(e.TaskID), ls)
	if e.Err != nil {
		b.WriteString(": " + errCause(e.Err))
	}
	if e.LastErr != nil {
		b.WriteString("; last poll: " + errCause(e.LastErr))
	}
	return onePrefix(b.String())
}

// Unwrap returns the cause.
func (e *WaitError) Unwrap() error { return e.Err }

// Is matches what the last poll error matches, so a wait that timed out while the task was
// not found matches ErrNotFound as well as ErrWaitTimeout.
func (e *WaitError) Is(target error) bool {
	return e.LastErr != nil && errors.Is(e.LastErr, target)
}

// As finds target in the last poll error (Unwrap already leads to the cause).
func (e *WaitError) As(target any) bool {
	return e.LastErr != nil && errors.As(e.LastErr, target)
}

// httpStatusText is used where an error body is unusable.
func httpStatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "unknown status"
}
