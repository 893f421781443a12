// Package bench holds benchmarks that compare the runway callback handler with the handlers a
// user would write instead: one verifying with stripe-go's webhook package, one with the
// Standard Webhooks Go library, and a bare read-and-decode floor. It is a module of its own so
// that those libraries never enter the runway module's dependencies; it has no API.
//
// Run the comparison with:
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench
