package runway

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
)

// pipeNet is an in-memory network for a fake API: its listener hands the server one end of a
// net.Pipe per dial, and its dialer returns the other end. Goroutines blocked on a pipe are
// durably blocked, so a client and fake server on a pipeNet run inside a testing/synctest
// bubble, where retry waits take no real time; a loopback socket would stall the bubble's
// clock. It behaves like a real connection for everything the tests do (keep-alive, hijack,
// a response cut mid-way).
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; later dials are refused.
func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// Addr implements net.Listener; the address only names the fake in URLs.
func (p *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

// DialContext connects to the listener.
func (p *pipeNet) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-p.done:
	case <-ctx.Done():
		_ = client.Close()
		_ = server.Close()
		return nil, ctx.Err()
	}
	_ = client.Close()
	_ = server.Close()
	return nil, &net.OpError{Op: "dial", Net: "pipe", Err: syscall.ECONNREFUSED}
}

// newPipeServer starts handler on a pipeNet and returns the server and an HTTP client whose
// transport dials it (with the SDK's default per-attempt timeout).
func newPipeServer(handler http.Handler) (*httptest.Server, *http.Client) {
	pn := newPipeNet()
	srv := httptest.NewUnstartedServer(handler)
	_ = srv.Listener.Close()
	srv.Listener = pn
	srv.Start()
	tr := &http.Transport{DialContext: pn.DialContext, MaxIdleConnsPerHost: 32}
	return srv, &http.Client{Transport: tr, Timeout: DefaultRequestTimeout}
}

// pipeHosts is an in-memory internet of pipeNets, one per fake address, shared by the tests'
// file hosts and the clients that download from them.
var pipeHosts = struct {
	mu   sync.Mutex
	next int
	nets map[string]*pipeNet
}{next: 20000, nets: map[string]*pipeNet{}}

// pipeAddrNet is a pipeNet listening on a given fake address.
type pipeAddrNet struct {
	*pipeNet
	addr *net.TCPAddr
}

func (p pipeAddrNet) Addr() net.Addr { return p.addr }

// Close stops the listener and forgets its address.
func (p pipeAddrNet) Close() error {
	pipeHosts.mu.Lock()
	delete(pipeHosts.nets, p.addr.String())
	pipeHosts.mu.Unlock()
	return p.pipeNet.Close()
}

// listenPipeHost returns a listener on a fresh fake loopback address of pipeHosts.
func listenPipeHost() net.Listener {
	pipeHosts.mu.Lock()
	defer pipeHosts.mu.Unlock()
	pipeHosts.next++
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pipeHosts.next}
	pn := newPipeNet()
	pipeHosts.nets[addr.String()] = pn
	return pipeAddrNet{pipeNet: pn, addr: addr}
}

// dialPipeHost dials a pipeHosts address; an unknown one is refused.
func dialPipeHost(ctx context.Context, network, addr string) (net.Conn, error) {
	pipeHosts.mu.Lock()
	pn := pipeHosts.nets[addr]
	pipeHosts.mu.Unlock()
	if pn == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	return pn.DialContext(ctx, network, addr)
}

// newPipeHostServer starts handler on a fresh pipeHosts address.
func newPipeHostServer(handler http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(handler)
	_ = srv.Listener.Close()
	srv.Listener = listenPipeHost()
	srv.Start()
	return srv
}
