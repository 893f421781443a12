package runway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// newRetryClient builds the client's one retryablehttp.Client, configured through its hooks:
// CheckRetry asks the decision table, Backoff returns the wait (retryablehttp waits it,
// selecting on the request's context), PrepareRetry logs the retry, and the last answer is
// passed through to Client.do. Everything a call needs to know about itself (its kind, its
// retry budget, what its attempts found) rides on its request context as a *callState.
func newRetryClient(c *Client) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   keepIdleClient(c.hc),
		Logger:       nil, // the SDK logs retries itself, with its own attributes
		RetryWaitMin: c.waitMin,
		RetryWaitMax: c.waitMax,
		RetryMax:     c.maxRetries,
		CheckRetry:   c.checkRetry,
		Backoff:      c.retryBackoff,
		PrepareRetry: c.prepareRetry,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// callState is what one API call's hooks share. The hooks of one call run one after another
// on the calling goroutine; only connected is written from the transport's goroutines.
type callState struct {
	kind         reqKind
	method, path string
	maxRetries   int // this call's budget, at most the retryablehttp.Client's RetryMax

	attempt   int         // 0-based number of the current attempt
	connected atomic.Bool // the current attempt got a connection (httptrace GotConn)

	judged  *http.Response  // the response checkRetry decoded, so a second look does not re-read it
	data    json.RawMessage // its envelope's data on success
	failure error           // its failure, or nil

	sent     bool      // the last failed attempt may have reached the server
	lastErr  error     // the last failed attempt's error
	failedAt time.Time // when it failed: the retry's wait is measured from there
}

type callStateKey struct{}

func withCallState(ctx context.Context, st *callState) context.Context {
	return context.WithValue(ctx, callStateKey{}, st)
}

func callStateFrom(ctx context.Context) *callState {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// checkRetry is the CheckRetry hook. It decodes a response's envelope itself (so it judges the
// body code, not only the status, and does so whether or not retryablehttp asks again after a
// response handler) and asks the decision table. The failure it returns is what Do returns when
// it gives up; it is idempotent for the same attempt.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	st := callStateFrom(ctx)
	if st == nil {
		return false, err // not a call of Client.do: nothing to decide
	}
	if err == nil && resp != nil {
		if st.judged != resp {
			st.judged = resp
			st.data, st.failure = c.readEnvelope(st.method, st.path, resp)
		}
		if st.failure == nil {
			return false, nil
		}
		err = st.failure
	}
	if err == nil {
		return false, nil
	}
	st.lastErr = err
	st.sent = resp != nil || (st.connected.Load() && !notSent(err))
	st.failedAt = time.Now()
	if ctx.Err() != nil || st.attempt >= st.maxRetries {
		return false, err
	}
	return decide(st.kind, answerOf(err), st.sent) == verdictRetry, err
}

// retryBackoff is the Backoff hook: full jitter over [min, min*2^attempt] capped at max, or
// the server's Retry-After (parsed by the SDK, capped at max). It never waits itself.
func (c *Client) retryBackoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	return backoff(min, max, attempt, retryAfterFrom(resp, c.now()))
}

// prepareRetry is the PrepareRetry hook, run after the wait and before the next attempt: it
// starts the attempt's state afresh, counts the retry and logs it.
func (c *Client) prepareRetry(req *http.Request) error {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return err
	}
	st := callStateFrom(ctx)
	if st == nil {
		return nil
	}
	st.attempt++
	st.connected.Store(false)
	st.judged = nil
	c.obs.retried(ctx)
	c.logger.LogAttrs(ctx, slog.LevelDebug, "runway: retrying request",
		slog.String("method", st.method), slog.String("path", st.path),
		slog.Int("attempt", st.attempt), slog.Duration("wait", time.Since(st.failedAt)),
		slog.String("reason", retryReason(st.lastErr)))
	return nil
}
