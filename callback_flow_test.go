package runway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestCallbackDuplicateAfterSuccess is CB-16: redeliveries of a processed task get 200 and never
// reach the result func again.
func TestCallbackDuplicateAfterSuccess(t *testing.T) {
	t.Parallel()
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var rc recorder
				h := NewCallbackHandler(WithResultFunc(rc.resultFunc()))
				for range 5 {
					rec := m.serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), nil))
					require.Equal(t, http.StatusOK, rec.Code)
				}
				require.EqualValues(t, 1, rc.calls.Load())
			})
		})
	}
}

// TestCallbackFuncFailureReleases is CB-18: an error or a panic answers 500, the process
// survives, and Kie's retry runs the func again; once it succeeds, later duplicates get 200
// without a call.
func TestCallbackFuncFailureReleases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fail func() error
	}{
		{name: "error", fail: func() error { return errors.New("database down") }},
		{name: "panic", fail: func() error { panic("nil map write") }},
		{name: "panic with error", fail: func() error { panic(errors.New("boom")) }},
	}
	for _, m := range serveModes {
		for _, tc := range tests {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					var logs logBuffer
					rc := recorder{}
					rc.then = func(context.Context, *Result) error {
						if rc.calls.Load() == 1 {
							return tc.fail()
						}
						return nil
					}
					h := NewCallbackHandler(WithResultFunc(rc.resultFunc()), WithCallbackLogger(logs.logger()))
					body := runwayBody(testID, 200, "ok")

					rec := m.serve(h, newCallbackRequest(body, nil))
					require.Equal(t, http.StatusInternalServerError, rec.Code)
					requireGenericBody(t, rec)
					require.Contains(t, logs.String(), "released for Kie's retry")
					if tc.name != "error" {
						require.Contains(t, logs.String(), "callback processing panicked")
						require.Contains(t, logs.String(), "callback_flow_test.go")
					}

					require.Equal(t, http.StatusOK, m.serve(h, newCallbackRequest(body, nil)).Code)
					require.Equal(t, http.StatusOK, m.serve(h, newCallbackRequest(body, nil)).Code)
					require.EqualValues(t, 2, rc.calls.Load())
				})
			})
		}
	}
}

// TestCallbackSlowFunc is CB-19: a func past its budget gets 503 at the budget (before Kie's
// 15 s), keeps the claim while it runs, so a retry meanwhile does not run it again; what
// happens next depends on how the func ends.
func TestCallbackSlowFunc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		succeed    bool
		wantRetry  int   // status of the retry after the func returned
		wantCalls  int32 // func calls in total
		honoursCtx bool
		budget     time.Duration
	}{
		{name: "ignores ctx, then succeeds", succeed: true, wantRetry: 200, wantCalls: 1},
		{name: "ignores ctx, then fails", succeed: false, wantRetry: 200, wantCalls: 2},
		{name: "honours ctx", honoursCtx: true, wantRetry: 200, wantCalls: 2},
		{name: "custom budget", succeed: true, wantRetry: 200, wantCalls: 1, budget: 3 * time.Second},
	}
	for _, m := range serveModes {
		for _, tc := range tests {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					release := make(chan struct{})
					var sawDeadline atomic.Bool
					rc := recorder{}
					rc.then = func(ctx context.Context, _ *Result) error {
						if rc.calls.Load() > 1 {
							return nil // the retry succeeds at once
						}
						if tc.honoursCtx {
							<-ctx.Done()
							sawDeadline.Store(errors.Is(ctx.Err(), context.DeadlineExceeded))
							return ctx.Err()
						}
						<-release
						if tc.succeed {
							return nil
						}
						return errors.New("failed late")
					}
					budget := tc.budget
					if budget == 0 {
						budget = DefaultResultTimeout
					}
					h := NewCallbackHandler(WithResultFunc(rc.resultFunc()), WithResultTimeout(budget))
					body := runwayBody(testID, 200, "ok")

					start := time.Now()
					rec := m.serve(h, newCallbackRequest(body, nil))
					if tc.honoursCtx {
						// The func's failure and the budget land at the same instant: either 5xx.
						require.Contains(t, []int{500, 503}, rec.Code)
					} else {
						require.Equal(t, http.StatusServiceUnavailable, rec.Code)
						require.Equal(t, "60", rec.Header().Get("Retry-After"))
						if m.name == "http1" {
							// Answered while ServeHTTP goes on: the connection closes behind it.
							require.Equal(t, "close", rec.Header().Get("Connection"))
						}
					}
					require.Equal(t, budget, time.Since(start), "answered exactly at the budget (fake time)")
					require.Less(t, budget, 15*time.Second)

					if !tc.honoursCtx {
						// Kie's retry while the func still runs: waits the budget, then 503, no second call.
						rec = m.serve(h, newCallbackRequest(body, nil))
						require.Equal(t, http.StatusServiceUnavailable, rec.Code)
						require.EqualValues(t, 1, rc.calls.Load())
						close(release)
					}
					synctest.Wait() // the func has returned and its claim is settled
					require.Equal(t, tc.honoursCtx, sawDeadline.Load(), "the func's ctx ended at the budget")

					require.Equal(t, tc.wantRetry, m.serve(h, newCallbackRequest(body, nil)).Code)
					require.Equal(t, http.StatusOK, m.serve(h, newCallbackRequest(body, nil)).Code)
					require.Equal(t, tc.wantCalls, rc.calls.Load())
				})
			})
		}
	}
}

// TestCallbackConcurrentDuplicates is CB-17: 100 identical deliveries of a new task at once run
// the func once; none is answered before the work is done, and all get 200.
func TestCallbackConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				rc := recorder{}
				rc.then = func(context.Context, *Result) error { <-release; return nil }
				h := NewCallbackHandler(WithResultFunc(rc.resultFunc()))
				body := runwayBody(testID, 200, "ok")

				const n = 100
				codes := make([]int, n)
				var answered atomic.Int32
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						codes[i] = m.serve(h, newCallbackRequest(body, nil)).Code
						answered.Add(1)
					})
				}
				synctest.Wait() // every delivery is blocked: one in the func, 99 waiting for it
				require.EqualValues(t, 1, rc.calls.Load())
				require.Zero(t, answered.Load(), "no delivery answered before the work is done")
				close(release)
				wg.Wait()
				for i, c := range codes {
					require.Equal(t, http.StatusOK, c, "delivery %d", i)
				}
				require.EqualValues(t, 1, rc.calls.Load())
			})
		})
	}
}

// TestCallbackConcurrentDuplicatesOverHTTP is CB-17 through a real server on loopback under
// -race: 100 concurrent POSTs of one new task; the func runs once and every POST gets 200.
func TestCallbackConcurrentDuplicatesOverHTTP(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const n = 100
	var arrived atomic.Int32
	allArrived := make(chan struct{})
	rc := recorder{}
	rc.then = func(ctx context.Context, _ *Result) error {
		select {
		case <-allArrived:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := NewCallbackHandler(WithResultFunc(rc.resultFunc()), WithResultTimeout(time.Minute))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == n {
			close(allArrived)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()

	body := runwayBody(testID, 200, "ok")
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := hc.Post(srv.URL, "application/json", strings.NewReader(body))
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		require.Equal(t, http.StatusOK, c)
	}
	require.EqualValues(t, 1, rc.calls.Load())
}

// TestCallbackBusyOnAnotherReplica: two handlers sharing a Deduper stand for two replicas. While
// one processes a task, the other answers 503 with Retry-After without calling its func; once
// the first is done, the other answers 200 without calling it either.
func TestCallbackBusyOnAnotherReplica(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		shared := NewMemoryDeduper(0)
		release := make(chan struct{})
		var a, b recorder
		a.then = func(context.Context, *Result) error { <-release; return nil }
		ha := NewCallbackHandler(WithDeduper(shared), WithResultFunc(a.resultFunc()))
		hb := NewCallbackHandler(WithDeduper(shared), WithResultFunc(b.resultFunc()))
		body := runwayBody(testID, 200, "ok")

		var codeA int
		done := make(chan struct{})
		go func() { codeA = serve(ha, newCallbackRequest(body, nil)).Code; close(done) }()
		synctest.Wait()

		rec := serve(hb, newCallbackRequest(body, nil))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Equal(t, "60", rec.Header().Get("Retry-After"))
		require.Zero(t, b.calls.Load())

		close(release)
		<-done
		require.Equal(t, http.StatusOK, codeA)
		require.Equal(t, http.StatusOK, serve(hb, newCallbackRequest(body, nil)).Code)
		require.EqualValues(t, 1, a.calls.Load())
		require.Zero(t, b.calls.Load())
	})
}

// faultyDeduper wraps a Deduper with injected failures.
type faultyDeduper struct {
	Deduper
	claimErr, doneErr, releaseErr error
	panicIn                       string // "claim", "done" or "release"
	status                        ClaimStatus
	releases                      atomic.Int32
}

func (f *faultyDeduper) Claim(ctx context.Context, key string, ttl time.Duration) (ClaimStatus, string, error) {
	if f.panicIn == "claim" {
		panic("claim bug")
	}
	if f.claimErr != nil {
		return 0, "", f.claimErr
	}
	if f.status != 0 {
		return f.status, "", nil
	}
	return f.Deduper.Claim(ctx, key, ttl)
}

func (f *faultyDeduper) Done(ctx context.Context, key, token string) error {
	if f.panicIn == "done" {
		panic("done bug")
	}
	if f.doneErr != nil {
		return f.doneErr
	}
	return f.Deduper.Done(ctx, key, token)
}

func (f *faultyDeduper) Release(ctx context.Context, key, token string) error {
	f.releases.Add(1)
	if f.panicIn == "release" {
		panic("release bug")
	}
	if f.releaseErr != nil {
		return f.releaseErr
	}
	return f.Deduper.Release(ctx, key, token)
}

// TestCallbackDeduperFaults: a store that cannot claim answers 503 without running the func; a
// store that cannot mark done still answers 200 (the work is done) and logs it; one that cannot
// release answers 500 and logs it. A store that panics is survived the same way.
func TestCallbackDeduperFaults(t *testing.T) {
	t.Parallel()
	storeDown := errors.New("store down")
	tests := []struct {
		name       string
		dd         *faultyDeduper
		failFunc   bool
		want       int
		wantCalled bool
		wantLog    string
	}{
		{name: "claim error", dd: &faultyDeduper{claimErr: storeDown}, want: 503, wantLog: "claim failed"},
		{name: "full", dd: &faultyDeduper{claimErr: errDeduperFull}, want: 503, wantLog: "store full"},
		{name: "unknown claim status", dd: &faultyDeduper{status: 42}, want: 503, wantLog: "unknown status"},
		{name: "done error", dd: &faultyDeduper{doneErr: storeDown}, want: 200, wantCalled: true, wantLog: "done failed"},
		{name: "release error", dd: &faultyDeduper{releaseErr: storeDown}, failFunc: true, want: 500, wantCalled: true, wantLog: "release failed"},
		{name: "claim panics", dd: &faultyDeduper{panicIn: "claim"}, want: 503, wantLog: "claim panicked"},
		{name: "done panics", dd: &faultyDeduper{panicIn: "done"}, want: 200, wantCalled: true, wantLog: "dedupe panicked"},
		{name: "release panics", dd: &faultyDeduper{panicIn: "release"}, failFunc: true, want: 500, wantCalled: true, wantLog: "dedupe panicked"},
	}
	for _, m := range serveModes {
		for _, tc := range tests {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					// A deduper of its own per run: the table's is a template.
					dd := &faultyDeduper{Deduper: NewMemoryDeduper(0), claimErr: tc.dd.claimErr, doneErr: tc.dd.doneErr,
						releaseErr: tc.dd.releaseErr, panicIn: tc.dd.panicIn, status: tc.dd.status}
					var logs logBuffer
					rc := recorder{}
					if tc.failFunc {
						rc.then = func(context.Context, *Result) error { return errors.New("func failed") }
					}
					h := NewCallbackHandler(WithDeduper(dd), WithResultFunc(rc.resultFunc()), WithCallbackLogger(logs.logger()))
					rec := m.serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), nil))
					require.Equal(t, tc.want, rec.Code)
					require.Equal(t, tc.wantCalled, rc.calls.Load() == 1)
					require.Contains(t, logs.String(), tc.wantLog)
					if tc.failFunc {
						require.EqualValues(t, 1, dd.releases.Load())
					}
					// The flight was settled: a redelivery is answered, not left waiting on it.
					require.Empty(t, h.flights.m)
				})
			})
		}
	}
}

// TestCallbackRequestGone: a delivery whose connection is gone while the func runs. Called
// directly, ServeHTTP stops waiting (503 to nobody) while the work finishes on its goroutine;
// under net/http over HTTP/1.x the work runs on the request's goroutine, which answers (to
// nobody) when it is over. Either way the func runs once and the next retry gets 200.
func TestCallbackRequestGone(t *testing.T) {
	t.Parallel()
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				rc := recorder{}
				rc.then = func(context.Context, *Result) error { <-release; return nil }
				h := NewCallbackHandler(WithResultFunc(rc.resultFunc()))
				body := runwayBody(testID, 200, "ok")
				ctx, cancel := context.WithCancel(context.Background())
				req := newCallbackRequest(body, nil).WithContext(ctx)
				var code int
				done := make(chan struct{})
				go func() { code = m.serve(h, req).Code; close(done) }()
				synctest.Wait()
				cancel()
				synctest.Wait()
				if m.name == "direct" {
					<-done
					require.Equal(t, http.StatusServiceUnavailable, code)
					close(release)
				} else {
					select {
					case <-done:
						t.Fatal("answered before the work was over")
					default:
					}
					close(release)
					<-done
					require.Equal(t, http.StatusOK, code)
				}
				synctest.Wait()
				require.Equal(t, http.StatusOK, m.serve(h, newCallbackRequest(body, nil)).Code)
				require.EqualValues(t, 1, rc.calls.Load())
			})
		})
	}
}

// TestCallbackResultCopy: the func gets its own copy of the result, so mutating it cannot
// change what waiters received.
func TestCallbackResultCopy(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var published *Result
		h := NewCallbackHandler(WithResultFunc(func(_ context.Context, r *Result) error {
			r.VideoURL = "mutated"
			return nil
		}))
		h.publish = func(_ context.Context, r *Result) error { published = r; return nil }
		require.Equal(t, 200, serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), nil)).Code)
		require.Equal(t, "https://file.com/k/1.mp4", published.VideoURL)
	})
}

// TestCallbackFuncContext: the result func's context carries the request's values and a
// deadline one budget after the delivery started, is not cancelled with the request (the
// work outlives it), ends with DeadlineExceeded at the budget and is cancelled once the
// delivery is over.
func TestCallbackFuncContext(t *testing.T) {
	t.Parallel()
	type key struct{}
	const budget = 3 * time.Second
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var got context.Context
				checked := make(chan struct{})
				h := NewCallbackHandler(WithResultTimeout(budget), WithResultFunc(func(ctx context.Context, _ *Result) error {
					got = ctx
					<-checked
					return nil
				}))
				reqCtx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
				start := time.Now()
				done := make(chan int)
				go func() {
					done <- m.serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), nil).WithContext(reqCtx)).Code
				}()
				synctest.Wait()
				require.Equal(t, "v", got.Value(key{}))
				dl, ok := got.Deadline()
				require.True(t, ok)
				require.Equal(t, start.Add(budget), dl)
				cancel()
				synctest.Wait()
				require.NoError(t, got.Err(), "the request's end must not end the work")
				time.Sleep(budget) // fake time: reaches the deadline
				<-got.Done()
				require.ErrorIs(t, got.Err(), context.DeadlineExceeded)
				// Called directly, ServeHTTP answered when the request was gone; over HTTP/1.x, at the
				// budget.
				require.Equal(t, http.StatusServiceUnavailable, <-done)
				close(checked)
				synctest.Wait()

				// A delivery that ends in time cancels its context when it is over.
				var second context.Context
				h2 := NewCallbackHandler(WithResultFunc(func(ctx context.Context, _ *Result) error { second = ctx; return nil }))
				require.Equal(t, http.StatusOK, m.serve(h2, newCallbackRequest(runwayBody(testID, 200, "ok"), nil)).Code)
				synctest.Wait()
				<-second.Done()
				require.ErrorIs(t, second.Err(), context.Canceled)
			})
		})
	}
}

// slowClaimDeduper is the memory deduper with a Claim that takes delay (fake time).
type slowClaimDeduper struct {
	Deduper
	delay time.Duration
}

func (d *slowClaimDeduper) Claim(ctx context.Context, key string, ttl time.Duration) (ClaimStatus, string, error) {
	time.Sleep(d.delay)
	return d.Deduper.Claim(ctx, key, ttl)
}

// TestCallbackBudgetIncludesTheClaim: the budget runs from before the dedupe claim, so a slow
// shared store cannot push the answer past it (Kie gives up at 15 s); a claim that outlasts
// the budget is answered 503 as soon as it returns.
func TestCallbackBudgetIncludesTheClaim(t *testing.T) {
	t.Parallel()
	const budget = 5 * time.Second
	for _, m := range serveModes {
		for _, tc := range []struct {
			claim, want time.Duration
		}{
			{claim: 3 * time.Second, want: budget},
			{claim: 7 * time.Second, want: 7 * time.Second},
		} {
			t.Run(fmt.Sprintf("%s/claim %v", m.name, tc.claim), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					release := make(chan struct{})
					h := NewCallbackHandler(WithResultTimeout(budget),
						WithDeduper(&slowClaimDeduper{Deduper: NewMemoryDeduper(0), delay: tc.claim}),
						WithResultFunc(func(context.Context, *Result) error { <-release; return nil }))
					start := time.Now()
					rec := m.serve(h, newCallbackRequest(runwayBody(testID, 200, "ok"), nil))
					require.Equal(t, http.StatusServiceUnavailable, rec.Code)
					require.Equal(t, tc.want, time.Since(start))
					close(release)
					synctest.Wait()
				})
			})
		}
	}
}

// panickyHandler is a slog.Handler that panics on records whose message contains any of
// msgs, and drops the others.
type panickyHandler struct{ msgs []string }

func (p panickyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (p panickyHandler) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p panickyHandler) WithGroup(string) slog.Handler            { return p }
func (p panickyHandler) Handle(_ context.Context, r slog.Record) error {
	for _, m := range p.msgs {
		if strings.Contains(r.Message, m) {
			panic("logger broke on: " + r.Message)
		}
	}
	return nil
}

// TestCallbackPanicEscapingTheWork: on the request's goroutine, even a panic that escapes the
// work (here a logger that panics while the work's own panic is being reported) leaves the
// flight settled and the budget's timer stopped: nothing writes to the answer after
// ServeHTTP returned, and net/http recovers the panic as for any handler.
func TestCallbackPanicEscapingTheWork(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const budget = 5 * time.Second
		logger := slog.New(panickyHandler{msgs: []string{"processing panicked", "dedupe panicked"}})
		events := make(chan CallbackEvent, 2)
		h := NewCallbackHandler(WithResultTimeout(budget), WithCallbackLogger(logger),
			WithCallbackObserver(Observer{OnCallback: func(e CallbackEvent) { events <- e }}),
			WithResultFunc(func(context.Context, *Result) error { panic("func bug") }))
		w, returned := serveHTTP1Writer(h, newCallbackRequest(runwayBody(testID, 200, "ok"), nil))
		<-returned
		w.mu.Lock()
		require.True(t, w.panicked, "the panic reaches net/http")
		w.mu.Unlock()
		require.Empty(t, h.flights.m, "flight settled")
		ev := <-events
		require.Equal(t, http.StatusInternalServerError, ev.Status, "reported as failed, not as net/http's implicit 200")
		require.Equal(t, CallbackFailed, ev.Reason)
		time.Sleep(2 * budget) // fake time: past the budget
		synctest.Wait()
		w.mu.Lock()
		defer w.mu.Unlock()
		require.Zero(t, w.lateWrites, "nothing written after ServeHTTP returned")
		require.Empty(t, events, "one OnCallback")
	})
}

// TestCallbackPanickingLoggerOnTheBudgetTimer: on the request's goroutine the over-budget 503
// is written by a timer, out of net/http's recovery; a logger that panics there neither takes
// the process down nor loses the answer, and the work goes on to the end.
func TestCallbackPanickingLoggerOnTheBudgetTimer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		logger := slog.New(panickyHandler{msgs: []string{"exceeded its budget"}})
		release := make(chan struct{})
		rc := recorder{}
		rc.then = func(context.Context, *Result) error { <-release; return nil }
		h := NewCallbackHandler(WithCallbackLogger(logger), WithResultFunc(rc.resultFunc()))
		body := runwayBody(testID, 200, "ok")
		rec := serveHTTP1(h, newCallbackRequest(body, nil))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Equal(t, "service unavailable\n", rec.Body.String())
		close(release)
		synctest.Wait()
		require.Equal(t, http.StatusOK, serveHTTP1(h, newCallbackRequest(body, nil)).Code)
		require.EqualValues(t, 1, rc.calls.Load())
	})
}
