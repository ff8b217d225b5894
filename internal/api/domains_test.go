package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/store"
)

// TestDomains: the domain endpoints, their answers and their refusals,
// in the order a person would meet them. The base domain is example.test.
func TestDomains(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "promo"})
	a.createApp(store.App{Name: "other"})
	cred := a.credential("promo")
	for _, tt := range []struct {
		name         string
		method, path string
		token, body  string
		want         int
		says         string // a part of the answer
	}{
		{"add", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "Shop.Example.com."}`, 201, `"name": "shop.example.com"`},
		{"add again: no change", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "shop.example.com"}`, 200, `"acme": false`},
		{"a wildcard", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "*.shop.example.com"}`, 201, `"*.shop.example.com"`},
		{"under the app's own name", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "www.promo.example.test"}`, 201, `"www.promo.example.test"`},
		{"another app's name", "POST", "/api/v1/apps/other/domains", a.admin, `{"name": "shop.example.com"}`, 409, "shop.example.com is a domain of app promo"},
		{"another app's wildcard", "POST", "/api/v1/apps/other/domains", a.admin, `{"name": "*.SHOP.example.com"}`, 409, "of app promo"},
		{"a name under the wildcard is free", "POST", "/api/v1/apps/other/domains", a.admin, `{"name": "api.shop.example.com"}`, 201, `"app": "other"`},
		{"not a DNS name", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "shop_1.example.com"}`, 400, "like shop.example.com"},
		{"a port", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "shop.example.com:8080"}`, 400, "not a DNS label"},
		{"unicode", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "bücher.example.com"}`, 400, "xn--bcher-kva.example.com"},
		{"another app's default name", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "other.example.test"}`, 400, "are the apps' own"},
		{"a future app's default name", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "later.example.test"}`, 400, "add a name outside example.test"},
		{"every app's default name", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "*.example.test"}`, 400, "are the apps' own"},
		{"under another app's name", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "www.other.example.test"}`, 400, "are the apps' own"},
		{"acme without an HTTPS listener", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "tls.example.com", "acme": true}`, 400, "no HTTPS listener"},
		{"acme for a wildcard", "POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "*.tls.example.com", "acme": true}`, 400, "wildcard certificate only through a DNS-01 challenge"},
		{"an unknown field", "POST", "/api/v1/apps/promo/domains", a.admin, `{"domain": "x.example.com"}`, 400, "unknown field"},
		{"a missing app", "POST", "/api/v1/apps/nope/domains", a.admin, `{"name": "x.example.com"}`, 404, "no app named nope"},
		{"a deploy credential may not", "POST", "/api/v1/apps/promo/domains", cred.Token, `{"name": "x.example.com"}`, 403, ""},
		{"list", "GET", "/api/v1/apps/promo/domains", a.admin, "", 200, `"*.shop.example.com"`},
		{"list of a missing app", "GET", "/api/v1/apps/nope/domains", a.admin, "", 404, "no app named nope"},
		{"remove", "DELETE", "/api/v1/apps/promo/domains/*.shop.example.com", a.admin, "", 204, ""},
		{"remove again", "DELETE", "/api/v1/apps/promo/domains/*.shop.example.com", a.admin, "", 404, "app promo has no domain *.shop.example.com"},
		{"remove another app's", "DELETE", "/api/v1/apps/other/domains/shop.example.com", a.admin, "", 404, "app other has no domain shop.example.com"},
		{"remove a bad name", "DELETE", "/api/v1/apps/promo/domains/a..b", a.admin, "", 400, "like shop.example.com"},
		{"now free for another app", "POST", "/api/v1/apps/other/domains", a.admin, `{"name": "*.shop.example.com"}`, 201, ""},
	} {
		code, b := a.do(tt.method, tt.path, tt.token, tt.body)
		if code != tt.want || !strings.Contains(string(b), tt.says) {
			t.Errorf("%s: %s %s %s: got %d %s, want %d saying %q", tt.name, tt.method, tt.path, tt.body, code, b, tt.want, tt.says)
		}
	}

	// The app shows its hosts, the default name first.
	var app App
	_, b := a.do("GET", "/api/v1/apps/promo", a.admin, "")
	if err := json.Unmarshal(b, &app); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(app.Hosts, " "); got != "promo.example.test shop.example.com www.promo.example.test" {
		t.Errorf("promo's hosts: %s", got)
	}

	// Deleting an app frees its names.
	if code, b := a.do("DELETE", "/api/v1/apps/promo", a.admin, ""); code != 204 {
		t.Fatalf("deleting promo: %d %s", code, b)
	}
	if code, b := a.do("POST", "/api/v1/apps/other/domains", a.admin, `{"name": "shop.example.com"}`); code != 201 {
		t.Errorf("a name of a deleted app: %d %s, want 201", code, b)
	}
}

// TestDomainBound: an app has at most settings.MaxDomains domains.
func TestDomainBound(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "promo"})
	for i := range 100 {
		if code, b := a.do("POST", "/api/v1/apps/promo/domains", a.admin, fmt.Sprintf(`{"name": "d%d.example.com"}`, i)); code != 201 {
			t.Fatalf("domain %d: %d %s", i, code, b)
		}
	}
	code, b := a.do("POST", "/api/v1/apps/promo/domains", a.admin, `{"name": "one-more.example.com"}`)
	if code != 409 || !strings.Contains(string(b), "has 100 custom domains, the most an app may have") {
		t.Errorf("domain 101: got %d %s, want 409 saying the bound", code, b)
	}
}

// TestURLs: an app's URLs, from the router's listeners.
func TestURLs(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    Listeners
		want string
	}{
		{"plain HTTP on 8080", Listeners{HTTPPort: "8080"}, "http://promo.example.test:8080 http://shop.example.com:8080"},
		{"default ports", Listeners{HTTPPort: "80", HTTPSPort: "443"}, "http://promo.example.test http://shop.example.com https://promo.example.test https://shop.example.com"},
		{"https where there is a certificate", Listeners{HTTPPort: "8080", HTTPSPort: "8443", HasCertificate: func(h string) bool { return h == "shop.example.com" }},
			"http://promo.example.test:8080 http://shop.example.com:8080 https://shop.example.com:8443"},
	} {
		if got := strings.Join(tt.l.urls([]string{"promo.example.test", "shop.example.com"}), " "); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}
