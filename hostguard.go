package runway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The host check of downloads: which addresses a file host may have, and how the check is
// put into the transport (at dial time for direct connections, before the request for
// connections through a proxy).
//
// An address is public when it is global unicast and in none of the entries of IANA's IPv4
// and IPv6 special-purpose address registries. Entries the registries mark globally
// reachable are refused too when they are anycast protocol endpoints or overlay
// identifiers that never serve files (192.0.0.9, 192.0.0.10, 192.31.196.0/24,
// 192.52.193.0/24, 192.175.48.0/24, the sub-blocks of 2001::/23 such as 2001:1::1 to ::3,
// 2001:3::/32, 2001:4:112::/48, 2001:20::/28 and 2001:30::/28, and 2620:4f:8000::/48):
// refusing them costs nothing. IPv6 forms that carry an IPv4 address (IPv4-mapped, the
// NAT64 well-known prefix 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32 and ISATAP
// interface identifiers) are judged by the IPv4 address inside, since that is where the
// packets end up on networks that translate or tunnel them.

// blockedV4 are the non-public IPv4 ranges: the IPv4 special-purpose registry, multicast and
// the reserved class E space (which holds the limited broadcast address).
var blockedV4 = mustPrefixes(
	"0.0.0.0/8",       // "this network"
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // shared address space (carrier-grade NAT; some cloud metadata services)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local (cloud metadata at 169.254.169.254)
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments (DS-Lite, NAT64 discovery, PCP and TURN anycast)
	"192.0.2.0/24",    // documentation (TEST-NET-1)
	"192.31.196.0/24", // AS112-v4 (DNS sink)
	"192.52.193.0/24", // AMT relays
	"192.88.99.0/24",  // deprecated 6to4 relay anycast
	"192.168.0.0/16",  // private
	"192.175.48.0/24", // AS112 direct delegation (DNS sink)
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation (TEST-NET-2)
	"203.0.113.0/24",  // documentation (TEST-NET-3)
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, and 255.255.255.255 limited broadcast
)

// globalV6 is the IPv6 space IANA allocates for global unicast. Everything outside it is
// refused: ::, ::1, IPv4-compatible ::/96, 64:ff9b:1::/48 (local-use NAT64), 100::/64
// (discard), 5f00::/16 (SRv6 SIDs), fc00::/7 (unique local), fe80::/10 (link-local),
// fec0::/10 (old site-local), ff00::/8 (multicast) and the unallocated rest. The IPv4-mapped
// and NAT64 well-known prefixes are handled before this test.
var globalV6 = netip.MustParsePrefix("2000::/3")

// blockedV6 are the non-public ranges inside 2000::/3 (6to4, 2002::/16, is judged by the
// IPv4 address inside and never reaches this list).
var blockedV6 = mustPrefixes(
	"2001::/23",         // IETF protocol assignments (Teredo, 2001::/32, is judged by its IPv4 addresses)
	"2001:db8::/32",     // documentation
	"2620:4f:8000::/48", // AS112 direct delegation (DNS sink)
	"3fff::/20",         // documentation
)

var (
	nat64WKP  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
)

func mustPrefixes(s ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(s))
	for i, p := range s {
		ps[i] = netip.MustParsePrefix(p)
	}
	return ps
}

// blockedAddr reports whether ip is not a public unicast address (see the comment above
// blockedV4).
func blockedAddr(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return true
	}
	if ip.Is4In6() {
		return blockedV4Addr(ip.Unmap())
	}
	if ip.Is4() {
		return blockedV4Addr(ip)
	}
	b := ip.As16()
	switch {
	case nat64WKP.Contains(ip):
		return blockedV4Addr(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		return blockedV4Addr(netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(ip):
		// 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC: the server, and the client's address
		// stored with every bit inverted.
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return blockedV4Addr(netip.AddrFrom4([4]byte(b[4:8]))) || blockedV4Addr(netip.AddrFrom4(client))
	case !globalV6.Contains(ip):
		return true
	}
	for _, p := range blockedV6 {
		if p.Contains(ip) {
			return true
		}
	}
	// ISATAP interface identifiers (::0:5efe:a.b.c.d, ::200:5efe:a.b.c.d) carry the IPv4
	// address of the tunnel end point inside any prefix.
	if (b[8]|0x02) == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		return blockedV4Addr(netip.AddrFrom4([4]byte(b[12:16])))
	}
	return false
}

func blockedV4Addr(ip netip.Addr) bool {
	for _, p := range blockedV4 {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// dialControl refuses connections to non-public addresses; it runs after DNS resolution, on
// the address actually dialled.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address", ErrHostNotAllowed)
	}
	if blockedAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrHostNotAllowed, ap.Addr())
	}
	return nil
}

// checkHost applies the checks on the URL's host name that come before any connection,
// when private hosts are not allowed. The name checked must be the very name that is
// resolved and sent on, so only plain ASCII names pass: letters, digits and '-' in labels
// of 1 to 63 bytes (an internationalised name must be given in its xn-- form, since
// net/http would map any other form to another name). A name whose last label is a number
// (all digits, or starting with 0x) is refused unless it is a canonical dotted-quad IPv4
// address: "2130706433", "0x7f.1" or "127.1" mean 127.0.0.1 to inet_aton and to proxies
// that parse addresses that way. Literal addresses are checked here; localhost names are
// refused.
func checkHost(host string) error {
	if strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %q is not an IPv6 address", ErrHostNotAllowed, printable(host, 64))
		}
		if blockedAddr(ip) {
			return fmt.Errorf("%w: %s is not a public address", ErrHostNotAllowed, ip)
		}
		return nil
	}
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%w: %q is not a host name", ErrHostNotAllowed, printable(host, 64))
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !ldhLabel(l) {
			return fmt.Errorf("%w: host %q is not plain ASCII (letters, digits and '-'; an internationalised name must be given in its xn-- form)",
				ErrHostNotAllowed, printable(host, 64))
		}
	}
	if last := labels[len(labels)-1]; numericLabel(last) {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("%w: host %q ends in a number but is not a dotted-quad IPv4 address", ErrHostNotAllowed, printable(host, 64))
		}
		if blockedAddr(ip) {
			return fmt.Errorf("%w: %s is not a public address", ErrHostNotAllowed, ip)
		}
		return nil
	}
	lower := strings.ToLower(name)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return fmt.Errorf("%w: %s", ErrHostNotAllowed, lower)
	}
	return nil
}

// ldhLabel reports whether l is 1 to 63 ASCII letters, digits and '-'.
func ldhLabel(l string) bool {
	if l == "" || len(l) > 63 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// numericLabel reports whether a host's last label makes it a number to URL parsers and
// inet_aton: all digits, or starting with 0x.
func numericLabel(l string) bool {
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// fqdn makes a host name fully qualified (a trailing dot), so resolvers do not try the
// search domains of resolv.conf on it; literal addresses are returned as they are.
func fqdn(host string) string {
	if _, err := netip.ParseAddr(host); err == nil || strings.HasSuffix(host, ".") {
		return host
	}
	return host + "."
}

// downloadHooks replace the network under the host check, for tests; nil fields mean the
// real network.
type downloadHooks struct {
	// lookup resolves a host name for the check of proxied requests.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// dial replaces the checked dialer of direct connections.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// checkedDial returns the dialer of direct connections to file hosts: it refuses
// non-public addresses after resolution, on the address actually dialled. Names are not
// made fully qualified here: whatever a search domain turns a name into, the address
// dialled is the one checked (and Go's resolver skips /etc/hosts for fully qualified names).
func (c *Client) checkedDial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.dlHooks.dial != nil {
		return c.dlHooks.dial
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: dialControl}
	return d.DialContext
}

// checkProxiedTarget resolves host (fully qualified, so the search domains do not apply)
// and refuses it if any of its addresses is not public; it returns the address to send the
// request to (the first IPv4 one, else the first). It runs before a request is handed to a
// proxy; an https request then asks the proxy for that very address, so a second lookup by
// the proxy (DNS rebinding, split-horizon DNS) cannot lead it elsewhere.
func (c *Client) checkProxiedTarget(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if blockedAddr(ip) {
			return netip.Addr{}, fmt.Errorf("%w: %s is not a public address", ErrHostNotAllowed, ip)
		}
		return ip.WithZone(""), nil
	}
	lookup := c.dlHooks.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, fqdn(host))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolving the host for the address check: %w", err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, errors.New("resolving the host for the address check: no address")
	}
	for _, a := range addrs {
		if blockedAddr(a) {
			return netip.Addr{}, fmt.Errorf("%w: it resolves to %s, not a public address", ErrHostNotAllowed, a.WithZone(""))
		}
	}
	pick := addrs[0]
	for _, a := range addrs {
		if a.Unmap().Is4() {
			pick = a
			break
		}
	}
	return pick.Unmap().WithZone(""), nil
}

// WithDownloadTransport sets the transport of downloads (Download, SaveResult and the
// callback-driven saves), in place of the Transport of the client's http.Client. Use it when
// that Transport is a wrapping RoundTripper (otelhttp, retry middleware), where the host
// check cannot be put in and downloads would be refused: give t, a plain *http.Transport
// (for example the one inside the wrapper), and downloads get the full check through it
// instead of turning the check off with WithAllowPrivateHosts. t is cloned once, at the
// client's first download, so that downloads share connections, and is never changed;
// changes made to t afterwards do not reach downloads. As with the client's transport, unless WithAllowPrivateHosts is given,
// t's DialContext (and Dial, DialTLS, DialTLSContext) is replaced by the checked dialer on
// direct connections, so a custom dialer in t is not used; t's Proxy func is. nil is an
// error.
func WithDownloadTransport(t *http.Transport) Option {
	return Option{func(c *clientConfig) error {
		if t == nil {
			return errors.New("WithDownloadTransport: nil *http.Transport (leave the option out to use the http.Client's)")
		}
		c.dlTransport = t
		return nil
	}}
}

// errNotTransport refuses downloads through a RoundTripper the host check cannot enter.
var errNotTransport = fmt.Errorf("%w: the client's HTTP transport is not an *http.Transport, so the address check cannot run; give downloads one with WithDownloadTransport, or pass WithAllowPrivateHosts", ErrHostNotAllowed)

// downloadTransport returns the RoundTripper for file hosts with the host check in place,
// and a func that releases its idle connections. Without allowPrivate the client's
// transport (WithDownloadTransport's, else the http.Client's) must be an *http.Transport
// (errNotTransport otherwise).
func (c *Client) downloadTransport(allowPrivate bool) (http.RoundTripper, func(), error) {
	rt := c.hc.Transport
	if c.dlTransport != nil {
		rt = c.dlTransport
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		if allowPrivate {
			return rt, func() {}, nil
		}
		return nil, nil, errNotTransport
	}
	if allowPrivate {
		t = t.Clone()
		return t, t.CloseIdleConnections, nil
	}
	// Direct connections dial the file host with the check on the dialled address. The
	// deprecated Dial and DialTLS are cleared along with their context forms: net/http would
	// use them instead of DialContext.
	direct := t.Clone()
	direct.Proxy = nil
	direct.DialContext = c.checkedDial()
	//lint:ignore SA1019 cleared on purpose: net/http would dial with it, unchecked
	direct.Dial = nil
	direct.DialTLSContext = nil
	//lint:ignore SA1019 cleared on purpose: net/http would dial with it, unchecked
	direct.DialTLS = nil
	if t.Proxy == nil {
		return direct, direct.CloseIdleConnections, nil
	}
	// Through a proxy, the transport only ever dials the proxy (the operator's choice, not
	// checked); the target is resolved and checked here, and the proxy is asked for the
	// checked address.
	base := t.Clone()
	r := &proxyRouter{c: c, choose: t.Proxy, direct: direct, base: base, proxied: map[proxyKey]*http.Transport{}}
	return r, r.closeIdle, nil
}

// proxyRouter sends each request the way the caller's transport would (through the proxy
// its Proxy func picks, or directly), with the host check of that way. A proxied https
// request goes to the address that passed the check, not to the name: CONNECT ip:port,
// with the TLS server name and the Host header still the name. A proxied http request
// names the host (net/http puts the Host header into the absolute-form target), so the
// proxy resolves it again.
type proxyRouter struct {
	c      *Client
	choose func(*http.Request) (*url.URL, error)
	direct *http.Transport
	base   *http.Transport // the caller's transport, cloned for each (proxy, host)

	mu      sync.Mutex
	proxied map[proxyKey]*http.Transport
}

type proxyKey struct{ proxy, host string }

func (r *proxyRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	u, err := r.choose(req)
	if err != nil {
		return nil, closeBody(req, err)
	}
	if u == nil {
		return r.direct.RoundTrip(req)
	}
	host := req.URL.Hostname()
	ip, err := r.c.checkProxiedTarget(req.Context(), host)
	if err != nil {
		return nil, closeBody(req, err)
	}
	if req.URL.Scheme != "https" {
		// net/http writes the Host header into an http request's absolute-form target, so
		// the proxy gets the name: the address cannot be pinned without losing the name.
		return r.transport(u, host).RoundTrip(req)
	}
	port := req.URL.Port()
	if port == "" {
		port = "443" // https: plain http returned above
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, closeBody(req, fmt.Errorf("%w: invalid port", ErrHostNotAllowed))
	}
	pinned := req.Clone(req.Context())
	pinned.URL.Host = netip.AddrPortFrom(ip, uint16(pn)).String()
	if pinned.Host == "" {
		pinned.Host = req.URL.Host
	}
	resp, err := r.transport(u, host).RoundTrip(pinned)
	if resp != nil {
		resp.Request = req // redirects and resumes go on from the name, not the address
	}
	return resp, err
}

// transport returns the transport for requests to host through proxy u: the caller's,
// with that proxy and, for https, host as the TLS server name (the request names the
// address).
func (r *proxyRouter) transport(u *url.URL, host string) *http.Transport {
	key := proxyKey{u.String(), host}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.proxied[key]; t != nil {
		return t
	}
	t := r.base.Clone()
	t.Proxy = http.ProxyURL(u)
	if _, err := netip.ParseAddr(host); err != nil {
		cfg := &tls.Config{}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = strings.TrimSuffix(host, ".")
		}
		t.TLSClientConfig = cfg
	}
	r.proxied[key] = t
	return t
}

// closeIdle releases the idle connections of every transport the router made.
func (r *proxyRouter) closeIdle() {
	r.direct.CloseIdleConnections()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.proxied {
		t.CloseIdleConnections()
	}
}

// closeBody honours the RoundTripper contract (the body is closed even on error).
func closeBody(req *http.Request, err error) error {
	if req.Body != nil {
		req.Body.Close()
	}
	return err
}

// checkURL parses raw and applies the scheme and host-name checks; the dial-time check on
// the resolved address is done by the transport from downloadClient.
func checkURL(raw string, allowPrivate bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid URL: %w", ErrHostNotAllowed, redactURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return u, fmt.Errorf("%w: scheme %q is not http or https", ErrHostNotAllowed, printable(u.Scheme, 16))
	}
	if u.Hostname() == "" {
		return u, fmt.Errorf("%w: URL has no host", ErrHostNotAllowed)
	}
	if allowPrivate {
		return u, nil
	}
	return u, checkHost(u.Hostname())
}

// downloadClients are the HTTP clients for file hosts, one with the host check and one
// without (WithAllowPrivateHosts), each built once per Client by downloadClient so that
// downloads reuse connections.
type downloadClients struct {
	mu      sync.Mutex
	hc      [2]*http.Client
	release [2]func() // release the idle connections of hc's transports
}

// closeIdle releases the idle connections of the download clients built so far; they stay
// usable.
func (d *downloadClients) closeIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, release := range d.release {
		if release != nil {
			release()
		}
	}
}

// downloadClient returns the HTTP client for file hosts, on the client's transport with the
// host check (see downloadTransport). It is built at the first download and kept, so that
// later downloads reuse its connections. Redirects are re-checked and, since requests are
// built by hand, carry no credentials.
func (c *Client) downloadClient(allowPrivate bool) (*http.Client, error) {
	i := 0
	if allowPrivate {
		i = 1
	}
	c.dl.mu.Lock()
	defer c.dl.mu.Unlock()
	if hc := c.dl.hc[i]; hc != nil {
		return hc, nil
	}
	rt, release, err := c.downloadTransport(allowPrivate)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if _, err := checkURL(req.URL.String(), allowPrivate); err != nil {
				return err
			}
			req.Header.Del("Authorization")
			req.Header.Del("Cookie")
			return nil
		},
	}
	c.dl.hc[i], c.dl.release[i] = hc, release
	return hc, nil
}
