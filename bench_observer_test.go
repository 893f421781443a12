package runway

import (
	"context"
	"net/http"
	"testing"
)

// noopObserver sets every func, so every event is built and delivered, and does nothing.
func noopObserver() Observer {
	return Observer{
		Start:      func(ctx context.Context, _ Op, _ string) context.Context { return ctx },
		OnSubmit:   func(SubmitEvent) {},
		OnPoll:     func(PollEvent) {},
		OnWaitEnd:  func(WaitEndEvent) {},
		OnCallback: func(CallbackEvent) {},
		OnResult:   func(ResultEvent) {},
		OnDownload: func(DownloadEvent) {},
	}
}

// observedCallbackHandler is sdkCallbackHandler on a client with o as its observer.
func observedCallbackHandler(tb testing.TB, o Observer) http.Handler {
	c := newOfflineClient(tb, WithObserver(o))
	return c.CallbackHandler(WithHMACKey(testKey1), WithClock(fixedClock), WithDeduper(benchDeduper()),
		WithResultFunc(func(context.Context, *Result) error { return nil }))
}

// BenchmarkCallbackHandlerObserved is BenchmarkCallbackHandler with an observer whose funcs
// do nothing: the cost of building and delivering the events (Start, OnCallback, OnResult).
// BenchmarkCallbackHandler itself is the unset case.
func BenchmarkCallbackHandlerObserved(b *testing.B) {
	benchServe(b, observedCallbackHandler(b, noopObserver()))
}
