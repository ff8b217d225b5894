package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/access"
)

// echoForwarded is a real backend that answers with the X-Forwarded-*
// headers it got.
func echoForwarded(t *testing.T) *Backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(srv.Close)
	return NewBackend("echo", strings.TrimPrefix(srv.URL, "http://"))
}

func mustPolicy(t *testing.T, httpsOnly bool, rules ...[3]string) access.Policy {
	t.Helper()
	p := access.Policy{HTTPSOnly: httpsOnly}
	for i, r := range rules {
		rule, err := access.ParseRule((i+1)*100, r[0], r[1], r[2])
		if err != nil {
			t.Fatal(err)
		}
		p.App = p.App.Put(rule)
	}
	return p
}

// TestAccessRules: a table of clients, IPv4 and IPv6, directly and behind
// trusted proxies, some with a spoofed X-Forwarded-For. The requests are
// handed to the router with the peer address set, since a test cannot
// connect from 10.0.0.0/8; the backend behind it is a real server.
func TestAccessRules(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	r := New(Options{TrustedProxies: trusted})
	r.SetHosts("promo", []string{"promo.example.com"})
	r.Swap("promo", []*Backend{echoForwarded(t)})
	r.SetPolicy("promo", mustPolicy(t, false,
		[3]string{access.Deny, "10.9.0.0/16", "lab"},
		[3]string{access.Allow, "10.0.0.0/8", "office"},
		[3]string{access.Allow, "2001:db8::/32", "office v6"}))
	for _, c := range []struct {
		name, peer, xff string
		want            int
		wantXFF         string // what the app sees, when it answers
	}{
		{"v4 allowed", "10.1.1.1:4000", "", 200, "10.1.1.1"},
		{"v4 denied by an earlier rule", "10.9.1.1:4000", "", 403, ""},
		{"v4 matching no rule", "192.0.2.1:4000", "", 403, ""},
		{"v4 spoofing an allowed address", "192.0.2.1:4000", "10.1.1.1", 403, ""},
		{"allowed, its own header dropped", "10.1.1.1:4000", "192.0.2.99", 200, "10.1.1.1"},
		{"v6 allowed", "[2001:db8::5]:4000", "", 200, "2001:db8::5"},
		{"v6 matching no rule", "[2001:dead::5]:4000", "", 403, ""},
		{"behind a trusted proxy, allowed", "127.0.0.1:4000", "10.1.1.1", 200, "10.1.1.1, 127.0.0.1"},
		{"behind a trusted proxy, denied", "127.0.0.1:4000", "192.0.2.1", 403, ""},
		{"behind a trusted proxy, spoofed on the left", "127.0.0.1:4000", "10.1.1.1, 192.0.2.1", 403, ""},
		{"behind a trusted v6 proxy, v6 client", "[::1]:4000", "2001:db8::9", 200, "2001:db8::9, ::1"},
		{"the trusted proxy itself", "127.0.0.1:4000", "", 403, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://promo.example.com/", nil)
			req.RemoteAddr = c.peer
			if c.xff != "" {
				req.Header.Set("X-Forwarded-For", c.xff)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if c.want == 200 {
				if got := strings.Split(w.Body.String(), "|")[0]; got != c.wantXFF {
					t.Errorf("the app saw X-Forwarded-For %q, want %q", got, c.wantXFF)
				}
			} else if !strings.Contains(w.Body.String(), "Forbidden") || strings.Contains(w.Body.String(), "slipway") {
				t.Errorf("403 page: %q", w.Body)
			}
		})
	}

	r.SetPolicy("promo", access.Policy{})
	req := httptest.NewRequest(http.MethodGet, "http://promo.example.com/", nil)
	req.RemoteAddr = "192.0.2.1:4000"
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("after the rules are removed: %d, want 200 at once", w.Code)
	}
}

// TestHTTPSOnlyRedirect: plain HTTP is redirected to the HTTPS listener;
// HTTPS, or HTTPS ended at a trusted proxy, is served.
func TestHTTPSOnlyRedirect(t *testing.T) {
	r := New(Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HTTPSPort: "8443"})
	r.SetHosts("promo", []string{"promo.example.com"})
	r.Swap("promo", []*Backend{echoForwarded(t)})
	r.SetPolicy("promo", access.Policy{HTTPSOnly: true})

	req := httptest.NewRequest(http.MethodGet, "http://Promo.Example.com:8080/a/b?c=d", nil)
	req.RemoteAddr = "192.0.2.1:4000"
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if loc := w.Header().Get("Location"); w.Code != http.StatusPermanentRedirect || loc != "https://promo.example.com:8443/a/b?c=d" {
		t.Errorf("plain HTTP: %d to %q, want 308 to https://promo.example.com:8443/a/b?c=d", w.Code, loc)
	}

	req.Header.Set("X-Forwarded-Proto", "https") // from an untrusted client: not believed
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusPermanentRedirect {
		t.Errorf("spoofed X-Forwarded-Proto from an untrusted peer: %d, want the redirect", w.Code)
	}

	req.RemoteAddr = "127.0.0.1:4000"
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != 200 || !strings.HasSuffix(w.Body.String(), "|https") {
		t.Errorf("HTTPS ended at a trusted proxy: %d %q, want 200 and the app told https", w.Code, w.Body)
	}
}

// FuzzHostRouting: a Host header finds its app however it is cased, with
// or without a port or a trailing dot, and NormalizeHost is idempotent;
// nothing else finds it. A wildcard finds the names exactly one label
// under its parent, after the exact names.
func FuzzHostRouting(f *testing.F) {
	for _, h := range []string{"promo.localhost", "Promo.Example.COM.:8080", "[::1]:80", "[2001:db8::1]", "", ":", "a..b", "ÄPP.localhost",
		"a.shop.example.com", "shop.example.com", "a.b.shop.example.com", ".shop.example.com", "exact.shop.example.com:1", "*.shop.example.com"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, host string) {
		n := NormalizeHost(host)
		if NormalizeHost(n) != n {
			t.Fatalf("NormalizeHost is not idempotent: %q → %q → %q", host, n, NormalizeHost(n))
		}
		if n != strings.ToLower(n) {
			t.Fatalf("NormalizeHost(%q) = %q is not lower case", host, n)
		}
		r := New(Options{})
		r.SetHosts("app", []string{"app.example.com", "*.shop.example.com"})
		r.SetHosts("exact", []string{"exact.shop.example.com"})
		got := ""
		if rt := r.table.Load().lookup(n); rt != nil {
			got = rt.app
		}
		label, parent, _ := strings.Cut(n, ".")
		want := ""
		switch {
		case n == "app.example.com":
			want = "app"
		case n == "exact.shop.example.com":
			want = "exact"
		case parent == "shop.example.com" && label != "":
			want = "app"
		}
		if got != want {
			t.Fatalf("host %q (normalized %q) found app %q, want %q", host, n, got, want)
		}
		for _, variant := range []string{"APP.example.com", "app.example.com.", "app.example.com:8080", "App.Example.Com.:443", "X.Shop.Example.Com.:80"} {
			if r.table.Load().lookup(NormalizeHost(variant)) == nil {
				t.Fatalf("%q does not find the app", variant)
			}
		}
	})
}

// TestHostMatching: exact names before the wildcard of the nearest
// parent; a wildcard stands for one label, as in TLS; a changed host set
// takes effect at once and keeps the app's backends.
func TestHostMatching(t *testing.T) {
	r := New(Options{})
	r.SetHosts("promo", []string{"promo.localhost", "shop.example.com", "*.shop.example.com"})
	r.SetHosts("api", []string{"api.localhost", "api.shop.example.com", "*.eu.shop.example.com"})
	r.SetHosts("bare", []string{"bare.localhost"})
	r.Swap("promo", []*Backend{echoForwarded(t)})
	for _, tt := range []struct{ host, want string }{
		{"promo.localhost", "promo"},
		{"shop.example.com", "promo"},
		{"a.shop.example.com", "promo"},
		{"A.Shop.Example.Com.:8080", "promo"},
		{"api.shop.example.com", "api"},     // exact beats the wildcard
		{"x.eu.shop.example.com", "api"},    // the nearest parent's wildcard
		{"eu.shop.example.com", "promo"},    // one label under shop.example.com
		{"a.b.shop.example.com", ""},        // two labels under it
		{"a.x.eu.shop.example.com", ""},     // two labels under eu
		{".shop.example.com", ""},           // an empty label
		{"example.com", ""},                 // the parent's parent
		{"*.shop.example.com", "promo"},     // the literal name is one label under it too
		{"promo.localhost.example.com", ""}, // no suffix matching
		{"bare.localhost", "bare"},
	} {
		got := ""
		if rt := r.table.Load().lookup(NormalizeHost(tt.host)); rt != nil {
			got = rt.app
		}
		if got != tt.want {
			t.Errorf("%s: got app %q, want %q", tt.host, got, tt.want)
		}
	}

	// Removing a name stops its routing at once; the backends stay.
	r.SetHosts("promo", []string{"promo.localhost", "shop.example.com"})
	if rt := r.table.Load().lookup("a.shop.example.com"); rt != nil {
		t.Errorf("a.shop.example.com still finds %s after its wildcard was removed", rt.app)
	}
	if n := len(r.Backends("promo")); n != 1 {
		t.Errorf("promo has %d backends after its hosts changed, want 1", n)
	}
	req := httptest.NewRequest(http.MethodGet, "http://shop.example.com/", nil)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("shop.example.com answered %d, want 200 from promo's backend", w.Code)
	}
	r.RemoveApp("promo")
	if rt := r.table.Load().lookup("shop.example.com"); rt != nil {
		t.Errorf("shop.example.com still finds %s after its app was removed", rt.app)
	}
}

// TestLookupAllocatesNothing: finding a host's app, exact or by its
// wildcard, allocates nothing on the request path.
func TestLookupAllocatesNothing(t *testing.T) {
	r := New(Options{})
	r.SetHosts("promo", []string{"promo.localhost", "shop.example.com", "*.shop.example.com"})
	tb := r.table.Load()
	for _, host := range []string{"promo.localhost", "a.shop.example.com", "a.b.shop.example.com"} {
		if n := testing.AllocsPerRun(100, func() { tb.lookup(NormalizeHost(host)) }); n != 0 {
			t.Errorf("looking up %s: %.0f allocations, want 0", host, n)
		}
	}
}

// TestForwardedSkipsTheRulesOnce: in a cluster, the node a client reached
// applies the app's access rules and passes the request to a node that
// runs the app over the peer link; that node serves it without applying
// them again (its peer is the other node, not the client), and believes
// the X-Forwarded-For the first node set. A request that reached it
// directly gets the rules as ever.
func TestForwardedSkipsTheRulesOnce(t *testing.T) {
	r := New(Options{})
	r.SetHosts("promo", []string{"promo.example.com"})
	r.Swap("promo", []*Backend{echoForwarded(t)})
	r.SetPolicy("promo", mustPolicy(t, false, [3]string{access.Allow, "10.0.0.0/8", "office"}))
	for _, c := range []struct {
		name      string
		forwarded bool
		want      int
		wantXFF   string
	}{
		{"directly, from a peer's address", false, 403, ""},
		{"forwarded by the peer", true, 200, "10.1.1.1, 192.0.2.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://promo.example.com/", nil)
			req.RemoteAddr = "192.0.2.7:4000" // the first node
			req.Header.Set("X-Forwarded-For", "10.1.1.1")
			w := httptest.NewRecorder()
			if c.forwarded {
				r.ServeForwarded(w, req)
			} else {
				r.ServeHTTP(w, req)
			}
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if c.want == 200 {
				if got, _, _ := strings.Cut(w.Body.String(), "|"); got != c.wantXFF {
					t.Errorf("the app saw X-Forwarded-For %q, want %q", got, c.wantXFF)
				}
			}
		})
	}
}
