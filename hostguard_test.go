package runway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	addr, _ := netip.AddrFromSlice(a)
	return addr
}

// v4Forms are the IPv6 addresses that carry the IPv4 address v4 and lead to it where NAT64,
// 6to4, Teredo or ISATAP is in use. The Teredo forms put v4 in one role and the public
// 8.8.8.8 in the other.
func v4Forms(v4 netip.Addr) map[string]netip.Addr {
	b := v4.As4()
	pub := [4]byte{8, 8, 8, 8}
	form := func(bytes ...byte) netip.Addr { return netip.AddrFrom16([16]byte(bytes)) }
	return map[string]netip.Addr{
		"IPv4-mapped":   netip.AddrFrom16(v4.As16()),
		"NAT64 64:ff9b": form(0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, b[0], b[1], b[2], b[3]),
		"6to4":          form(0x20, 0x02, b[0], b[1], b[2], b[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
		"Teredo client": form(0x20, 0x01, 0, 0, pub[0], pub[1], pub[2], pub[3], 0, 0, 0, 0, ^b[0], ^b[1], ^b[2], ^b[3]),
		"Teredo server": form(0x20, 0x01, 0, 0, b[0], b[1], b[2], b[3], 0, 0, 0, 0, ^pub[0], ^pub[1], ^pub[2], ^pub[3]),
		"ISATAP":        form(0x2a, 0x00, 0x14, 0x50, 0, 0, 0, 0, 0, 0, 0x5e, 0xfe, b[0], b[1], b[2], b[3]),
	}
}

// requireRefused checks ip at every place the host check runs: the address predicate, the
// dial-time check and the URL check (a literal is refused before any connection).
func requireRefused(t *testing.T, ip netip.Addr, what string) {
	t.Helper()
	require.True(t, blockedAddr(ip), "%s: %s must be refused", what, ip)
	require.ErrorIs(t, dialControl("tcp", netip.AddrPortFrom(ip, 443).String(), nil), ErrHostNotAllowed, "%s: %s", what, ip)
	if !ip.IsValid() {
		return // no URL names it
	}
	_, err := checkURL(literalURL(ip), false)
	require.ErrorIs(t, err, ErrHostNotAllowed, "%s: %s", what, ip)
	require.NotContains(t, err.Error(), "invalid URL", "%s: %s refused for its address, not for a parse error", what, ip)
}

func requireAllowed(t *testing.T, ip netip.Addr, what string) {
	t.Helper()
	require.False(t, blockedAddr(ip), "%s: %s must pass", what, ip)
	require.NoError(t, dialControl("tcp", netip.AddrPortFrom(ip, 443).String(), nil), "%s: %s", what, ip)
	_, err := checkURL(literalURL(ip), false)
	require.NoError(t, err, "%s: %s", what, ip)
}

// literalURL is an https URL naming ip on port 443; a zone's '%' is escaped as "%25", as
// URLs require (a bare '%' would make the URL unparsable).
func literalURL(ip netip.Addr) string {
	return "https://" + strings.Replace(netip.AddrPortFrom(ip, 443).String(), "%", "%25", 1) + "/v.mp4"
}

// TestBlockedAddrSpecialPurposeRegistries is issue 11 item 5: every non-global entry of
// IANA's IPv4 and IPv6 special-purpose address registries (and the globally reachable
// anycast/identifier entries the SDK refuses on purpose) is refused at its first and last
// address, every non-public IPv4 address also in each IPv6 form that carries it, and public
// addresses (also in those forms) pass.
func TestBlockedAddrSpecialPurposeRegistries(t *testing.T) {
	t.Parallel()
	v4 := []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32", "192.0.0.170/32", "192.0.0.171/32",
		"192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.88.99.2/32", "192.168.0.0/16",
		"192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"255.255.255.255/32",
	}
	v6 := []string{
		"::1/128", "::/128", "::/96" /* IPv4-compatible */, "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
		"2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:2::/48", "2001:3::/32",
		"2001:4:112::/48", "2001:10::/28", "2001:20::/28", "2001:30::/28", "2001:db8::/32", "2002::/16",
		"2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	}
	for _, s := range append(v4, v6...) {
		p := netip.MustParsePrefix(s)
		for _, ip := range []netip.Addr{p.Addr(), lastAddr(p)} {
			requireRefused(t, ip, s)
			if ip.Is4() {
				for form, a := range v4Forms(ip) {
					requireRefused(t, a, s+" as "+form)
				}
			}
		}
	}
	requireRefused(t, netip.MustParseAddr("fe80::1%eth0"), "zoned link-local")
	require.Equal(t, "https://[fe80::1%25eth0]:443/v.mp4", literalURL(netip.MustParseAddr("fe80::1%eth0")))
	requireRefused(t, netip.Addr{}, "invalid")

	// The forms named in the issue, and cloud metadata behind NAT64.
	for _, s := range []string{"64:ff9b::7f00:1", "2002:7f00:1::1", "2001:0:808:808::80ff:fffe", "::7f00:1",
		"::ffff:7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe"} {
		requireRefused(t, netip.MustParseAddr(s), "issue form")
	}

	for _, s := range []string{"8.8.8.8", "1.1.1.1", "93.184.215.14", "11.0.0.1", "100.128.0.1", "172.32.0.1",
		"192.0.3.1", "192.88.100.1", "192.169.0.1", "198.20.0.1", "223.255.255.255"} {
		ip := netip.MustParseAddr(s)
		requireAllowed(t, ip, "public IPv4")
		for form, a := range v4Forms(ip) {
			requireAllowed(t, a, "public IPv4 as "+form)
		}
		// IPv4-compatible addresses are deprecated and never routed: refused whatever they carry.
		requireRefused(t, netip.AddrFrom16([16]byte(append(make([]byte, 12), ip.AsSlice()...))), "IPv4-compatible "+s)
	}
	for _, s := range []string{"2606:4700:4700::1111", "2a00:1450:4001:81c::200e", "2001:4860:4860::8888",
		"2001:200::1", "3fff:1000::1", "2620:4f:8001::1", "2c0f:fb50:4003::1"} {
		requireAllowed(t, netip.MustParseAddr(s), "public IPv6")
	}
}

// recordingDial is a dial hook that records the addresses asked for and connects nowhere.
type recordingDial struct {
	mu    sync.Mutex
	addrs []string
}

var errTestDial = errors.New("test dialer: no network here")

func (d *recordingDial) dial(_ context.Context, _, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, addr)
	return nil, errTestDial
}

func (d *recordingDial) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// TestDownloadRefusesIPv4InIPv6Forms is issue 11 item 5 end to end: a download URL naming a
// private IPv4 host through NAT64, 6to4, Teredo, IPv4-compatible or IPv4-mapped forms is
// refused with ErrHostNotAllowed before any dial.
func TestDownloadRefusesIPv4InIPv6Forms(t *testing.T) {
	verifyNoDownloadLeaks(t)
	c, _ := newDownloadClient(t, "")
	var dials recordingDial
	c.dlHooks.dial = dials.dial
	for _, host := range []string{"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
		"2001:0:808:808::80ff:fffe", "2001:0:a9fe:a9fe::f7f7:f7f7", "::7f00:1", "::ffff:7f00:1", "64:ff9b:1::a00:1"} {
		n, err := c.Download(context.Background(), "http://["+host+"]:8080/latest/meta-data/", io.Discard)
		require.ErrorIs(t, err, ErrHostNotAllowed, host)
		require.Zero(t, n)
	}
	require.Empty(t, dials.calls(), "refused before any dial")
}

// TestDownloadClearsDeprecatedDialTLS is issue 11 item 6: a caller transport's deprecated
// DialTLS (and Dial) would be used by net/http instead of the checked dialer; they are
// cleared, so the connection goes through the check.
func TestDownloadClearsDeprecatedDialTLS(t *testing.T) {
	verifyNoDownloadLeaks(t)
	var legacy atomic.Int32
	tr := &http.Transport{
		//lint:ignore SA1019 the deprecated hook under test
		DialTLS: func(network, addr string) (net.Conn, error) {
			legacy.Add(1)
			return nil, errors.New("DialTLS reached")
		},
		//lint:ignore SA1019 the deprecated hook under test
		Dial: func(network, addr string) (net.Conn, error) {
			legacy.Add(1)
			return nil, errors.New("Dial reached")
		},
	}
	c, _ := newDownloadClient(t, "", WithHTTPClient(&http.Client{Transport: tr}))
	var dials recordingDial
	c.dlHooks.dial = dials.dial
	for _, u := range []string{"https://files.example.com/v.mp4", "http://files.example.com/v.mp4"} {
		_, err := c.Download(context.Background(), u, io.Discard, WithDownloadRetries(0))
		require.ErrorIs(t, err, errTestDial, u)
	}
	require.Zero(t, legacy.Load(), "the deprecated hooks were not used")
	require.Equal(t, []string{"files.example.com:443", "files.example.com:80"}, dials.calls(), "the checked dialer was")
}

// TestDownloadRefusesUnknownRoundTripper is issue 11 item 6: when the client's transport is
// not an *http.Transport the check cannot be installed, so downloads are refused unless
// WithAllowPrivateHosts, even to a public address.
func TestDownloadRefusesUnknownRoundTripper(t *testing.T) {
	verifyNoDownloadLeaks(t)
	var calls atomic.Int32
	rt := downloadRoundTripper(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		assert.Empty(t, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: http.StatusOK, ContentLength: 2, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
	})
	c, _ := newDownloadClient(t, "", WithHTTPClient(&http.Client{Transport: rt}))
	for _, u := range []string{"http://93.184.215.14/v.mp4", "https://files.example.com/v.mp4"} {
		_, err := c.Download(context.Background(), u, io.Discard)
		require.ErrorIs(t, err, ErrHostNotAllowed, u)
		require.ErrorContains(t, err, "not an *http.Transport")
	}
	require.Zero(t, calls.Load())

	var buf bytes.Buffer
	n, err := c.Download(context.Background(), "http://93.184.215.14/v.mp4", &buf, WithAllowPrivateHosts())
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, int32(1), calls.Load())
}

// fakeResolver answers the host check's lookups from a table; other names do not resolve,
// nor do names asked without the trailing dot of a fully qualified name (a resolver would
// try the search domains on them).
func fakeResolver(table map[string]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		name, abs := strings.CutSuffix(host, ".")
		if a, ok := table[name]; ok && abs {
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
}

// proxyNames maps the names the download tests use: example.com (which the httptest
// certificate covers) is public, private.example.com is not.
var proxyNames = map[string]string{
	"example.com":         "93.184.215.14",
	"private.example.com": "10.0.0.7",
	"nat64.example.com":   "64:ff9b::a9fe:a9fe",
}

// connectProxy is a CONNECT proxy on loopback that tunnels every request to target,
// whatever name it asks for (it "resolves" names itself), and records what was asked.
type connectProxy struct {
	*httptest.Server
	mu    sync.Mutex
	asked []string
}

func newConnectProxy(t *testing.T, target string) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.asked = append(p.asked, r.Method+" "+r.Host)
		p.mu.Unlock()
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		dst, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			dst.Close()
			return
		}
		fmt.Fprint(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.Copy(dst, buf) // client to target, until the client closes
			dst.Close()
		}()
		io.Copy(conn, dst) // target to client, until either side closes
		conn.Close()
		dst.Close()
		<-done
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *connectProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asked...)
}

// TestDownloadThroughConnectProxy is issue 12 item 5: with the host check on, an https
// download goes through the transport's proxy (a CONNECT proxy on loopback, allowed: the
// proxy is the operator's choice), and the target is checked by its resolved addresses
// before anything is sent to the proxy, which is asked for the checked address: a private
// target, also one reached by a redirect, is refused and the proxy never hears of it. A URL the Proxy func sends direct (as
// NO_PROXY does) is dialled through the checked dialer.
func TestDownloadThroughConnectProxy(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(100 << 10)
	files := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "https://private.example.com/v.mp4", http.StatusFound)
		default:
			serveFile(body, "video/mp4")(w, r, 0)
		}
	}))
	t.Cleanup(files.Close)
	proxy := newConnectProxy(t, files.Listener.Addr().String())
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)

	tr := &http.Transport{
		TLSClientConfig: files.Client().Transport.(*http.Transport).TLSClientConfig.Clone(),
		Proxy: func(r *http.Request) (*url.URL, error) {
			if r.URL.Hostname() == "direct.example.com" { // as NO_PROXY would
				return nil, nil
			}
			return proxyURL, nil
		},
	}
	c, _ := newDownloadClient(t, "", WithHTTPClient(&http.Client{Transport: tr}))
	c.dlHooks.lookup = fakeResolver(proxyNames)
	var dials recordingDial
	c.dlHooks.dial = dials.dial

	var buf bytes.Buffer
	n, err := c.Download(context.Background(), "https://example.com/v.mp4", &buf)
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), n)
	require.Equal(t, body, buf.Bytes())
	require.Equal(t, []string{"CONNECT 93.184.215.14:443"}, proxy.requests(), "the proxy is asked for the checked address")

	for _, u := range []string{"https://private.example.com/v.mp4", "https://nat64.example.com/v.mp4",
		"https://" + files.Listener.Addr().String() + "/v.mp4", "https://unknown.example.com/v.mp4"} {
		_, err := c.Download(context.Background(), u, io.Discard, WithDownloadRetries(0))
		require.Error(t, err, u)
		if !strings.Contains(u, "unknown") {
			require.ErrorIs(t, err, ErrHostNotAllowed, u)
		}
	}
	_, err = c.Download(context.Background(), "https://example.com/redirect", io.Discard)
	require.ErrorIs(t, err, ErrHostNotAllowed)
	require.Equal(t, []string{"CONNECT 93.184.215.14:443"}, proxy.requests(),
		"refused targets never reach the proxy; the redirecting request reuses the first tunnel")

	_, err = c.Download(context.Background(), "https://direct.example.com/v.mp4", io.Discard, WithDownloadRetries(0))
	require.ErrorIs(t, err, errTestDial)
	require.Equal(t, []string{"direct.example.com:443"}, dials.calls(), "only the direct request dials, through the check")
}

// TestDownloadThroughHTTPProxy is issue 12 item 5 for http targets: the request goes to a
// plain HTTP proxy in absolute form after the target passed the check.
func TestDownloadThroughHTTPProxy(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(50 << 10)
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String())
		mu.Unlock()
		serveFile(body, "video/mp4")(w, r, 0) // answers as the origin would
	}))
	t.Cleanup(proxy.Close)
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	c, _ := newDownloadClient(t, "", WithHTTPClient(&http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}))
	c.dlHooks.lookup = fakeResolver(proxyNames)
	var dials recordingDial
	c.dlHooks.dial = dials.dial

	var buf bytes.Buffer
	n, err := c.Download(context.Background(), "http://example.com/v.mp4?sig=1", &buf)
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), n)
	require.Equal(t, body, buf.Bytes())

	_, err = c.Download(context.Background(), "http://private.example.com/v.mp4", io.Discard)
	require.ErrorIs(t, err, ErrHostNotAllowed)
	mu.Lock()
	require.Equal(t, []string{"GET http://example.com/v.mp4?sig=1"}, seen)
	mu.Unlock()
	require.Empty(t, dials.calls())
}

// TestDownloadRefusesHostFormsThatChangeOnTheWay: a host name is checked only in the form
// that is resolved and sent on. Non-ASCII names (net/http maps fullwidth "ｌｏｃａｌｈｏｓｔ"
// to "localhost"), names ending in a number that are not dotted-quad IPv4 addresses
// ("2130706433" and "0x7f.1" are 127.0.0.1 to inet_aton) are refused before any lookup,
// dial or proxy request, on the direct and on the proxy path; names are looked up fully
// qualified, so search domains do not apply.
func TestDownloadRefusesHostFormsThatChangeOnTheWay(t *testing.T) {
	verifyNoDownloadLeaks(t)
	refused := []string{"ｌｏｃａｌｈｏｓｔ", "bücher.example", "2130706433", "0x7f.1", "127.1", "0x7f000001",
		"017700000001", "127.0.0.1.", "127.000.000.001", "example.0x1f", "example.123", "exa_mple.com",
		"example.com..", "[fe80::1%25eth0]"}
	proxy := newConnectProxy(t, "127.0.0.1:1")
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	var mu sync.Mutex
	var lookups []string
	resolve := fakeResolver(map[string]string{"xn--bcher-kva.example": "93.184.215.14"})
	for _, viaProxy := range []bool{false, true} {
		tr := &http.Transport{}
		if viaProxy {
			tr.Proxy = http.ProxyURL(proxyURL)
		}
		c, _ := newDownloadClient(t, "", WithHTTPClient(&http.Client{Transport: tr}))
		var dials recordingDial
		c.dlHooks.dial = dials.dial
		c.dlHooks.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			mu.Lock()
			lookups = append(lookups, host)
			mu.Unlock()
			return resolve(ctx, host)
		}
		for _, h := range refused {
			_, err := c.Download(context.Background(), "https://"+h+"/v.mp4", io.Discard, WithDownloadRetries(0))
			require.ErrorIs(t, err, ErrHostNotAllowed, "%s (proxy %v)", h, viaProxy)
		}
		require.Empty(t, dials.calls(), "refused before any dial")
		mu.Lock()
		require.Empty(t, lookups, "refused before any lookup")
		mu.Unlock()
		require.Empty(t, proxy.requests(), "refused before the proxy hears of it")

		// The punycode form and a canonical public dotted quad pass the name check.
		_, err := c.Download(context.Background(), "https://xn--bcher-kva.example/v.mp4", io.Discard, WithDownloadRetries(0))
		require.NotErrorIs(t, err, ErrHostNotAllowed)
		_, err = c.Download(context.Background(), "https://93.184.215.14/v.mp4", io.Discard, WithDownloadRetries(0))
		require.NotErrorIs(t, err, ErrHostNotAllowed)
		if !viaProxy {
			require.Equal(t, []string{"xn--bcher-kva.example:443", "93.184.215.14:443"}, dials.calls())
		}
	}
	mu.Lock()
	require.Equal(t, []string{"xn--bcher-kva.example."}, lookups, "looked up fully qualified")
	mu.Unlock()
}

// TestWithDownloadTransport: a client whose transport is a wrapping RoundTripper downloads
// through the plain *http.Transport given with WithDownloadTransport, with the host check
// still on (loopback refused); the wrapper carries API calls only. nil is an error.
func TestWithDownloadTransport(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(20 << 10)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveFile(body, "video/mp4")(w, r, 0)
	}))
	t.Cleanup(files.Close)

	var wrapped atomic.Int32
	inner := &http.Transport{}
	t.Cleanup(inner.CloseIdleConnections)
	wrapper := downloadRoundTripper(func(r *http.Request) (*http.Response, error) {
		wrapped.Add(1)
		return inner.RoundTrip(r)
	})
	var routed atomic.Int32
	plain := &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		routed.Add(1) // the download transport's Proxy func is asked, and says direct
		return nil, nil
	}}
	c, _ := newDownloadClient(t, "", WithHTTPClient(&http.Client{Transport: wrapper}), WithDownloadTransport(plain))
	var dials recordingDial
	c.dlHooks.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.dial(ctx, network, addr)
		var d net.Dialer
		return d.DialContext(ctx, network, files.Listener.Addr().String()) // the "public" host
	}

	var buf bytes.Buffer
	n, err := c.Download(context.Background(), "http://files.example.com/v.mp4", &buf)
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), n)
	require.Equal(t, body, buf.Bytes())
	require.Equal(t, []string{"files.example.com:80"}, dials.calls(), "dialled through the checked dialer")
	require.Positive(t, routed.Load(), "through the download transport")
	require.Zero(t, wrapped.Load(), "not through the wrapper")

	_, err = c.Download(context.Background(), files.URL+"/v.mp4", io.Discard)
	require.ErrorIs(t, err, ErrHostNotAllowed, "loopback still refused")
	require.Len(t, dials.calls(), 1)

	_, err = NewClient(testAPIKey, WithDownloadTransport(nil))
	require.ErrorContains(t, err, "WithDownloadTransport: nil")
}

// TestDownloadThroughProxyPinsCheckedAddress: the proxy is asked to CONNECT to the address
// that passed the check (the IPv4 one of the name's addresses), never to the name, so a
// name that answers the proxy's own lookup with an internal address (DNS rebinding,
// split-horizon DNS) cannot lead it inside; TLS still verifies the name and the Host header
// still carries it, also on a resumed attempt, which is checked and pinned again.
func TestDownloadThroughProxyPinsCheckedAddress(t *testing.T) {
	verifyNoDownloadLeaks(t)
	body := downloadPayload(64 << 10)
	var mu sync.Mutex
	var hosts []string
	files := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		first := len(hosts) == 1
		mu.Unlock()
		if first {
			cutAfter(w, body, len(body)/2, true) // the second attempt resumes
			return
		}
		serveFile(body, "video/mp4")(w, r, 0)
	}))
	t.Cleanup(files.Close)
	proxy := newConnectProxy(t, files.Listener.Addr().String())
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	tr := &http.Transport{
		TLSClientConfig: files.Client().Transport.(*http.Transport).TLSClientConfig.Clone(),
		Proxy:           http.ProxyURL(proxyURL),
	}
	// Real sockets (a TLS host behind a CONNECT proxy) cannot run in a synctest bubble: keep
	// the one retry's wait short instead.
	c, _ := newDownloadClient(t, "", WithHTTPClient(&http.Client{Transport: tr}), WithRetryBackoff(time.Millisecond, time.Millisecond))
	var lookups atomic.Int32
	c.dlHooks.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		lookups.Add(1)
		assert.Equal(t, "rebind.example.com.", host)
		return []netip.Addr{netip.MustParseAddr("2606:4700:4700::1111"), netip.MustParseAddr("93.184.215.14")}, nil
	}

	var buf bytes.Buffer
	n, err := c.Download(context.Background(), "https://rebind.example.com:8443/v.mp4", &buf, WithDownloadRetries(1))
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), n)
	require.Equal(t, body, buf.Bytes())
	require.Equal(t, int32(2), lookups.Load(), "each attempt is checked")
	require.Equal(t, []string{"CONNECT 93.184.215.14:8443", "CONNECT 93.184.215.14:8443"}, proxy.requests(),
		"the checked IPv4 address, never the name")
	mu.Lock()
	require.Equal(t, []string{"rebind.example.com:8443", "rebind.example.com:8443"}, hosts, "the Host header keeps the name")
	mu.Unlock()
}

func TestDownloadRefusesSchemesAndPrivateHosts(t *testing.T) {
	verifyNoDownloadLeaks(t)
	host := newFileHost(t, serveFile([]byte("secret metadata"), ""))
	c, _ := newDownloadClient(t, "")
	urls := []string{
		"file:///etc/passwd",
		"ftp://example.com/v.mp4",
		"gopher://example.com/",
		"javascript:alert(1)",
		"//example.com/v.mp4",
		"http:///nohost",
		host.URL + "/v", // 127.0.0.1
		"http://localhost:1/v",
		"http://LOCALHOST./v",
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/v",
		"http://192.168.1.1/v",
		"http://[::1]:1/v",
		"http://[fd00::1]/v",
		"http://[::ffff:127.0.0.1]/v",
		"http://0.0.0.0/v",
		"http://100.100.100.200/v",
	}
	// A name that is not "localhost" but resolves to loopback exercises the dial-time check.
	if name := loopbackName(); name != "" {
		urls = append(urls, strings.Replace(host.URL, "127.0.0.1", name, 1)+"/v")
	}
	for _, u := range urls {
		n, err := c.Download(context.Background(), u, io.Discard)
		require.ErrorIs(t, err, ErrHostNotAllowed, u)
		require.Zero(t, n)
	}
	require.Empty(t, host.requests(), "a refused host must not be contacted")

	t.Run("redirect to a refused scheme", func(t *testing.T) {
		redir := newFileHost(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		})
		_, err := c.Download(context.Background(), redir.URL+"/v", io.Discard, WithAllowPrivateHosts())
		require.ErrorIs(t, err, ErrHostNotAllowed)
		require.Len(t, redir.requests(), 1, "not retried")
	})
}

func TestBlockedAddr(t *testing.T) {
	t.Parallel()
	blocked := []string{"127.0.0.1", "127.8.9.10", "169.254.169.254", "10.1.2.3", "172.16.0.1",
		"192.168.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "100.100.100.200", "::", "::1",
		"fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254"}
	public := []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"}
	for _, s := range blocked {
		require.True(t, blockedAddr(netip.MustParseAddr(s)), s)
		require.ErrorIs(t, dialControl("tcp", net.JoinHostPort(s, "443"), nil), ErrHostNotAllowed, s)
	}
	for _, s := range public {
		require.False(t, blockedAddr(netip.MustParseAddr(s)), s)
		require.NoError(t, dialControl("tcp", net.JoinHostPort(s, "443"), nil), s)
	}
}
