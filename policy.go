package runway

import "errors"

// The one answer to "retry, give up, or wait" for every request the SDK makes. Every path
// asks decide: the API client's retry hook (submissions and safe reads), APIError.Retryable
// and the submission's "may the task exist" flag, WaitForResult's poll loop, and downloads.
// Changing when the SDK retries means changing this file (and its golden table in testdata).

// reqKind is what a request is, which decides how much of a failure may be repeated.
type reqKind uint8

const (
	// kindSubmit creates a task (Generate, Extend, GenerateAleph): not idempotent, so it is
	// repeated only when the API certainly did not create a task.
	kindSubmit reqKind = iota
	// kindRead is a safe API request (GetTask, GetAlephTask, Credits, DownloadURL).
	kindRead
	// kindPoll is a details request of WaitForResult: a safe read whose "not found" may only
	// mean that a task created moments ago is not visible yet.
	kindPoll
	// kindDownload is a GET of a result file from its file host (no envelope, no body code).
	kindDownload

	numReqKinds = 4
)

// String names the kind for logs and test names.
func (k reqKind) String() string {
	switch k {
	case kindSubmit:
		return "submit"
	case kindRead:
		return "read"
	case kindPoll:
		return "poll"
	case kindDownload:
		return "download"
	}
	return "unknown"
}

// verdict is what to do after an attempt.
type verdict uint8

const (
	// verdictDone: the answer is a success (2xx with body code 200; for downloads 200/206).
	verdictDone verdict = iota
	// verdictRetry: transient; repeat after the backoff, which honours Retry-After.
	verdictRetry
	// verdictGiveUp: permanent; return the error.
	verdictGiveUp
	// verdictMayExist: give up, and the submission may have created (and billed) a task.
	verdictMayExist
	// verdictRefresh: a download link that expired or was refused: fetch a fresh link once,
	// then try again.
	verdictRefresh
	// verdictNotFound: a poll found no such task: repeat within the wait's grace period, give
	// up after it.
	verdictNotFound
)

// String names the verdict for logs, test names and the golden table.
func (v verdict) String() string {
	switch v {
	case verdictDone:
		return "done"
	case verdictRetry:
		return "retry"
	case verdictGiveUp:
		return "give-up"
	case verdictMayExist:
		return "give-up-may-exist"
	case verdictRefresh:
		return "refresh-link"
	case verdictNotFound:
		return "not-found-grace"
	}
	return "unknown"
}

// answer is what an attempt brought back.
type answer struct {
	// status is the HTTP status; 0 means no answer at all (a transport error: refused, reset,
	// timeout, a body cut mid-way).
	status int
	// code is the envelope's body code; 0 when there was no usable envelope (an HTML page,
	// broken JSON, an oversized body) and always for downloads.
	code int
	// notFound marks Kie's other spellings of "no such task" for a details lookup (code 422
	// "The record does not exist", or code 200 with null data).
	notFound bool
}

// effective returns the code an API answer is judged by: the body code when it says
// something other than success, else the HTTP status. A 429 inside a 503 is a 429.
func (a answer) effective() int {
	if a.code != 0 && a.code != 200 {
		return a.code
	}
	return a.status
}

// decide is the decision table. sent reports whether a failed attempt may have reached the
// server; it matters only without an answer (status 0), since an answer proves it did.
func decide(k reqKind, a answer, sent bool) verdict {
	if k == kindDownload {
		return decideDownload(a.status)
	}
	if a.status == 0 {
		switch {
		case k != kindSubmit:
			return verdictRetry // safe to repeat whatever happened
		case sent:
			return verdictMayExist // it may have arrived: never re-send
		default:
			return verdictRetry // it never left: nothing can exist
		}
	}
	if a.status/100 == 2 && a.code == 200 && !a.notFound {
		return verdictDone
	}
	c := a.effective()
	garbled := a.code == 0 && a.status/100 == 2 // a proxy page or cut JSON behind a 2xx
	switch k {
	case kindSubmit:
		switch {
		case c == 429:
			// Refused before a task was created, even when wrapped in a 5xx.
			return verdictRetry
		case c == 408, c >= 500 && c != 505, garbled:
			// A failure after the request arrived, or an answer that hides the outcome.
			// 455 (maintenance) and 505 (feature disabled) are refusals.
			return verdictMayExist
		}
		return verdictGiveUp
	case kindPoll:
		switch {
		case a.notFound || c == 404:
			return verdictNotFound
		case garbled:
			// Says nothing about the task; it must not end a wait that has minutes left.
			return verdictRetry
		}
	}
	if a.notFound {
		return verdictGiveUp
	}
	switch {
	case c == 408, c == 429, c == 455:
		return verdictRetry
	case c == 501, c == 505:
		return verdictGiveUp // not implemented / feature disabled: asking again will not help
	case c >= 500 && c <= 599:
		return verdictRetry
	}
	return verdictGiveUp
}

// decideDownload is the file host's part of the table: no envelope, so the status alone.
func decideDownload(status int) verdict {
	switch {
	case status == 0:
		return verdictRetry // network failure; a refused host is stopped before the table
	case status == 200, status == 206:
		return verdictDone
	case status == 403, status == 404, status == 410:
		return verdictRefresh // expired or revoked signed link
	case status == 416:
		return verdictRetry // the range is dropped and the whole file asked for
	case status == 408, status == 429:
		return verdictRetry
	case status >= 500 && status != 501:
		return verdictRetry
	}
	return verdictGiveUp
}

// answer returns the table's view of an API error.
func (e *APIError) answer() answer {
	return answer{status: e.StatusCode, code: e.Code, notFound: e.notFound}
}

// answerOf returns the table's view of a failed call's error: the API's answer, or no answer
// for a transport error.
func answerOf(err error) answer {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.answer()
	}
	return answer{}
}
