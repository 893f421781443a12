// Package bench holds benchmarks that compare the runway callback handler with the handlers a
// user would write instead: one verifying with stripe-go's webhook package, one with the
// Standard Webhooks Go library, and a bare read-and-decode floor. It is a module of its own so
// that those libraries never enter the runway module's dependencies; it has no API.
//
// BenchmarkCallbackHandlers calls each handler's ServeHTTP directly; BenchmarkCallbackHandlersNetHTTP
// mounts each in a net/http Server and sends the same deliveries over an in-memory HTTP/1.1
// connection. The SDK's handler takes a faster path under net/http over HTTP/1.x (the delivery
// processed on the request's goroutine) than when called directly or over HTTP/2 (on a
// goroutine of its own): the first benchmark measures the second path, the other the first.
//
// Run the comparison with:
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench
