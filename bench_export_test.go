package runway

import (
	"net"
	"net/http"
)

// Test-only exports for the runway_test benchmarks and tests, which live outside the package
// because they use runwaytest (which imports runway).

// NewPipeHost returns an in-memory listener (for runwaytest.WithListener) and an HTTP client
// that reaches it. Unlike loopback sockets, both run inside a testing/synctest bubble, where
// the client's waits (rate-limit slots, retries) take no real time.
func NewPipeHost() (net.Listener, *http.Client) {
	return listenPipeHost(), &http.Client{Transport: &http.Transport{DialContext: dialPipeHost}}
}
