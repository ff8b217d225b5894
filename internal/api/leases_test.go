package api

import (
	"bytes"
	"encoding/json"
	"github.com/slipway-dev/slipway/internal/golden"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/store"
)

// leaseTest is the lease endpoint served on loopback by a lease service
// on the test API's real store, with the endpoint's log kept.
type leaseTest struct {
	*testAPI
	leases   *lease.Service
	endpoint string
	log      *bytes.Buffer
}

func newLeaseTest(t *testing.T) *leaseTest {
	t.Helper()
	lt := &leaseTest{log: &bytes.Buffer{}}
	key, err := lease.LoadKey(filepath.Join(t.TempDir(), "lease.key"))
	if err != nil {
		t.Fatal(err)
	}
	lt.testAPI = newTestAPI(t, func(o *Options) {
		lt.leases = lease.New(lease.Options{Store: o.Store, URL: "http://127.0.0.1:1", Key: key})
		o.Leases = lt.leases
	})
	srv := httptest.NewServer(NewLeaseEndpoint(lt.leases, slog.New(slog.NewTextHandler(lt.log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	t.Cleanup(srv.Close)
	lt.endpoint = srv.URL
	return lt
}

// instance registers an instance and returns the path of its
// SLIPWAY_LEASE_URL on the test server.
func (lt *leaseTest) instance(app, id string, release int) string {
	return "/v1/leases/" + lease.SecretOf(lt.leases.Register(app, id, release))
}

func (lt *leaseTest) call(method, path string) (int, http.Header, []byte) {
	lt.t.Helper()
	req, err := http.NewRequestWithContext(lt.t.Context(), method, lt.endpoint+path, nil)
	if err != nil {
		lt.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		lt.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestLeaseEndpoint walks a lease through the endpoint: taken, renewed,
// refused to another instance with its holder, given up, taken by the
// other with a larger token.
func TestLeaseEndpoint(t *testing.T) {
	lt := newLeaseTest(t)
	a, b := lt.instance("promo", "promo-v1-a", 1), lt.instance("promo", "promo-v2-b", 2)
	code, _, body := lt.call("POST", a+"/nightly?ttl=15s")
	var got Lease
	if err := json.Unmarshal(body, &got); code != 200 || err != nil {
		t.Fatalf("taking: %d %s", code, body)
	}
	if got.Name != "nightly" || got.Holder != "promo-v1-a" || got.Release != 1 || got.FencingToken == 0 ||
		time.Until(got.Expires) < 14*time.Second || time.Until(got.Expires) > 15*time.Second {
		t.Errorf("taken: %+v", got)
	}
	var keys map[string]any
	json.Unmarshal(body, &keys)
	for _, k := range []string{"name", "holder", "fencing_token", "expires"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("the answer has no %q: %s", k, body)
		}
	}
	if code, _, body := lt.call("POST", a+"/nightly?ttl=20"); code != 200 || !strings.Contains(string(body), `"fencing_token": `) {
		t.Errorf("renewing: %d %s", code, body)
	}
	code, _, body = lt.call("POST", b+"/nightly")
	var refused Error
	if err := json.Unmarshal(body, &refused); code != 409 || err != nil || refused.Lease == nil || refused.Lease.Holder != "promo-v1-a" || refused.Lease.FencingToken != got.FencingToken {
		t.Errorf("another instance's take: %d %s; want 409 with the holder", code, body)
	}
	if code, _, body := lt.call("GET", b+"/nightly"); code != 200 || !strings.Contains(string(body), `"holder": "promo-v1-a"`) {
		t.Errorf("another instance's GET: %d %s", code, body)
	}
	if code, _, body := lt.call("DELETE", b+"/nightly"); code != 409 {
		t.Errorf("another instance's DELETE: %d %s, want 409", code, body)
	}
	if code, _, body := lt.call("DELETE", a+"/nightly"); code != 204 {
		t.Errorf("the holder's DELETE: %d %s, want 204", code, body)
	}
	for _, method := range []string{"GET", "DELETE"} {
		if code, _, body := lt.call(method, a+"/nightly"); code != 404 || !strings.Contains(string(body), "no instance of app promo holds lease nightly") {
			t.Errorf("%s of a free lease: %d %s, want 404", method, code, body)
		}
	}
	code, _, body = lt.call("POST", b+"/nightly?ttl=1m")
	var next Lease
	if err := json.Unmarshal(body, &next); code != 200 || err != nil || next.FencingToken <= got.FencingToken || next.Release != 2 {
		t.Errorf("the other's take once it is free: %d %s; want a token above %d", code, body, got.FencingToken)
	}
}

// TestLeaseEndpointRefusesBadCalls: a wrong secret, method, name, TTL or
// parameter gets a clear 4xx, the secret checked first; no secret ever
// reaches the log.
func TestLeaseEndpointRefusesBadCalls(t *testing.T) {
	lt := newLeaseTest(t)
	a := lt.instance("promo", "promo-v1-a", 1)
	lt.instance("promo", "promo-v1-b", 1)
	stopping := lt.instance("promo", "promo-v1-c", 1)
	lt.leases.Stopping(t.Context(), "promo", "promo-v1-c")
	lt.leases.SetRunner("promo", "runner")
	tests := []struct {
		name, method, path string
		want               int
		says               string
	}{
		{"no secret", "POST", "/v1/leases//x", 401, "unknown lease secret"},
		{"a made-up secret", "POST", "/v1/leases/abc/x", 401, "unknown lease secret"},
		{"a made-up secret, bad method", "PUT", "/v1/leases/abc/x", 401, "unknown lease secret"},
		{"a made-up secret, bad name", "GET", "/v1/leases/abc/BAD", 401, "unknown lease secret"},
		{"PUT", "PUT", a + "/x", 405, "POST takes or renews it"},
		{"PATCH", "PATCH", a + "/x", 405, "method PATCH is not allowed"},
		{"capitals", "POST", a + "/Nightly", 400, `invalid lease name "Nightly"`},
		{"a slash", "POST", a + "/a/b", 400, `invalid lease name "a/b"`},
		{"an escaped slash", "POST", a + "/a%2Fb", 400, `invalid lease name "a/b"`},
		{"dot dot", "GET", a + "/%2e%2e", 400, `invalid lease name ".."`},
		{"no name", "POST", a + "/", 400, `invalid lease name ""`},
		{"too long", "POST", a + "/" + strings.Repeat("n", 129), 400, "1 to 128"},
		{"TTL 0", "POST", a + "/x?ttl=0", 400, "invalid lease TTL"},
		{"TTL in ms", "POST", a + "/x?ttl=500ms", 400, "whole seconds from 1s to 10m0s"},
		{"TTL too long", "POST", a + "/x?ttl=11m", 400, "invalid lease TTL"},
		{"TTL not a duration", "POST", a + "/x?ttl=soon", 400, `invalid lease TTL "soon": want a duration like ttl=15s`},
		{"TTL 10m1s", "POST", a + "/x?ttl=10m1s", 400, "invalid lease TTL"},
		{"TTL negative", "POST", a + "/x?ttl=-15s", 400, "invalid lease TTL"},
		{"TTL huge", "POST", a + "/x?ttl=" + strings.Repeat("9", 40), 400, "invalid lease TTL"},
		{"TTL twice", "POST", a + "/x?ttl=5s&ttl=10m", 400, `parameter "ttl" is given 2 times`},
		{"a unicode name", "POST", a + "/%C3%A9t%C3%A9", 400, "invalid lease name"},
		{"a secret too long", "POST", a + strings.Repeat("A", 4096) + "/x", 401, "unknown lease secret"},
		{"a mistyped parameter", "POST", a + "/x?tll=5s", 400, `unknown parameter "tll"`},
		{"a parameter on GET", "GET", a + "/x?ttl=5s", 400, "GET takes none"},
		{"a bad query", "POST", a + "/x?ttl=%zz", 400, "the query cannot be read"},
		{"the single runner's name", "POST", a + "/runner", 409, "single runner lease"},
		{"a stopping instance", "POST", stopping + "/x", 409, "the instance is stopping"},
		{"no lease path", "GET", "/v1/other", 404, "call $SLIPWAY_LEASE_URL/NAME"},
		{"the secret alone", "POST", a, 404, "no lease name: call $SLIPWAY_LEASE_URL/NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := lt.call(tt.method, tt.path)
			var e Error
			json.Unmarshal(body, &e)
			if code != tt.want || !strings.Contains(e.Error, tt.says) {
				t.Errorf("%s: got %d %s, want %d saying %q", tt.method, code, body, tt.want, tt.says)
			}
			if code == 405 && h.Get("Allow") != "GET, POST, DELETE" {
				t.Errorf("Allow: %q", h.Get("Allow"))
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
		})
	}
	if secret := strings.TrimPrefix(a, "/v1/leases/"); strings.Contains(lt.log.String(), secret) {
		t.Errorf("the endpoint logged a secret:\n%s", lt.log)
	}
}

// TestListLeases: the API lists an app's leases for its admin and its
// deploy credential, not another app's.
func TestListLeases(t *testing.T) {
	lt := newLeaseTest(t)
	lt.createApp(store.App{Name: "promo"})
	lt.createApp(store.App{Name: "other"})
	a := lt.instance("promo", "promo-v1-a", 1)
	if code, _, body := lt.call("POST", a+"/nightly"); code != 200 {
		t.Fatalf("taking: %d %s", code, body)
	}
	code, body := lt.do("GET", "/api/v1/apps/promo/leases", lt.admin, "")
	var ls []Lease
	if err := json.Unmarshal(body, &ls); code != 200 || err != nil || len(ls) != 1 || ls[0].Holder != "promo-v1-a" {
		t.Errorf("promo's leases: %d %s", code, body)
	}
	if code, body := lt.do("GET", "/api/v1/apps/other/leases", lt.admin, ""); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("other's leases: %d %s, want []", code, body)
	}
	if code, body := lt.do("GET", "/api/v1/apps/nope/leases", lt.admin, ""); code != 404 {
		t.Errorf("a missing app's leases: %d %s, want 404", code, body)
	}
	cred := lt.credential("promo")
	if code, body := lt.do("GET", "/api/v1/apps/promo/leases", cred.Token, ""); code != 200 {
		t.Errorf("with promo's deploy credential: %d %s", code, body)
	}
	if code, body := lt.do("GET", "/api/v1/apps/other/leases", cred.Token, ""); code != 403 {
		t.Errorf("another app's leases with promo's credential: %d %s, want 403", code, body)
	}
}

// TestLeaseWireFormat pins the JSON of leases, as the endpoint and the
// API show them.
func TestLeaseWireFormat(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	b, err := json.MarshalIndent(leasesOf([]store.Lease{
		{App: "promo", Name: "nightly", Holder: "promo-v3-1a2b3c", Release: 3, TTL: 15, Token: 4211, Expires: at},
		{App: "promo", Name: "runner", Holder: "promo-v3-4d5e6f", Release: 3, Runner: true, Token: 4090},
	}), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "leases.json", append(b, '\n'))
}
