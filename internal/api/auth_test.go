package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/store"
)

// denyLoopback gives app a deploy access rule that allows 10.0.0.0/8 only,
// so the tests' loopback client is denied.
func (a *testAPI) denyLoopback(app string) {
	a.t.Helper()
	if code, b := a.do(http.MethodPost, "/api/v1/apps/"+app+"/access/rules", a.admin,
		`{"scope": "deploy", "priority": 100, "action": "allow", "network": "10.0.0.0/8"}`); code != http.StatusOK {
		a.t.Fatalf("adding a deploy rule to %s: %d %s", app, code, b)
	}
}

// appRoutes are the routes about one app, %s for its name: the deploy
// endpoints, the app-scope reads, and a few admin routes.
var appRoutes = []struct{ method, path string }{
	{"POST", "/api/v1/apps/%s/deployments?filename=app.jar"},
	{"GET", "/api/v1/apps/%s/deployments"},
	{"GET", "/api/v1/apps/%s/deployments/1"},
	{"GET", "/api/v1/apps/%s/deployments/1/events"},
	{"POST", "/api/v1/apps/%s/deployments/current/cancel"},
	{"GET", "/api/v1/apps/%s/status"},
	{"GET", "/api/v1/apps/%s/logs"},
	{"GET", "/api/v1/apps/%s/logs/download"},
	{"GET", "/api/v1/apps/%s"},
	{"GET", "/api/v1/apps/%s/settings"},
	{"GET", "/api/v1/apps/%s/access"},
}

// TestOutsidersLearnNothing: a caller without a valid token, or with the
// credential of another app, gets the same answer about an app whether it
// exists or not and whatever its deploy access rules say. The token is
// checked first, then what it may do, then the app's deploy rules, and
// only then does the handler look for the app.
func TestOutsidersLearnNothing(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "walled"})
	a.denyLoopback("walled")
	a.createApp(store.App{Name: "plain"})
	a.createApp(store.App{Name: "mine"})
	mine := a.credential("mine")
	callers := []struct {
		name  string
		token string
		want  int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"a token that is none", "slw_nope_AAAA", http.StatusUnauthorized},
		{"a mistyped token", mine.Token + "x", http.StatusUnauthorized},
		{"another app's credential", mine.Token, http.StatusForbidden},
	}
	apps := []string{"walled", "plain", "ghost"} // denied, open, missing
	for _, c := range callers {
		for _, r := range appRoutes {
			t.Run(c.name+" "+r.method+" "+r.path, func(t *testing.T) {
				want := ""
				for _, app := range apps {
					code, b := a.do(r.method, fmt.Sprintf(r.path, app), c.token, "")
					// The app's name, sent by the caller, may come back.
					got := fmt.Sprintf("%d %s", code, strings.ReplaceAll(string(b), app, "APP"))
					if code != c.want {
						t.Errorf("app %s: got %s, want status %d", app, got, c.want)
					}
					if want == "" {
						want = got
					} else if got != want {
						t.Errorf("app %s: got %s, want the answer about %s: %s", app, got, apps[0], want)
					}
				}
			})
		}
	}
}

// TestInsidersLearnWhatIsTheirs: the callers entitled to an app get its
// deploy access rules applied, and the admin learns that an app is
// missing.
func TestInsidersLearnWhatIsTheirs(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "walled"})
	a.denyLoopback("walled")
	a.createApp(store.App{Name: "plain"})
	walled, plain := a.credential("walled"), a.credential("plain")
	tests := []struct {
		name, token, path string
		want              int
		say               string
	}{
		{"admin, denied by the rules", a.admin, "/api/v1/apps/walled/deployments", 403, "address 127.0.0.1 may not reach"},
		{"admin, missing app", a.admin, "/api/v1/apps/ghost/deployments", 404, "no app named ghost"},
		{"admin, open app", a.admin, "/api/v1/apps/plain/deployments", 200, ""},
		{"own credential, denied by the rules", walled.Token, "/api/v1/apps/walled/deployments", 403, "address 127.0.0.1 may not reach"},
		{"own credential, open app", plain.Token, "/api/v1/apps/plain/deployments", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := a.do(http.MethodGet, tt.path, tt.token, "")
			if code != tt.want || !strings.Contains(string(b), tt.say) {
				t.Errorf("GET %s: got %d %s, want %d saying %q", tt.path, code, b, tt.want, tt.say)
			}
		})
	}
}

// TestClientAddressIsThePeer: what a client says of its own address, in
// X-Real-IP or X-Forwarded-For, does not change the address the deploy
// access rules see; only X-Forwarded-For added by a trusted proxy does.
func TestClientAddressIsThePeer(t *testing.T) {
	direct := newTestAPI(t)
	proxied := newTestAPI(t, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	for _, a := range []*testAPI{direct, proxied} {
		a.createApp(store.App{Name: "walled"})
		a.denyLoopback("walled")
	}
	allowed := "10.1.2.3" // in the rule's 10.0.0.0/8
	tests := []struct {
		name   string
		a      *testAPI
		header http.Header
		want   int
	}{
		{"untrusted peer, X-Real-IP", direct, http.Header{"X-Real-Ip": {allowed}}, 403},
		{"untrusted peer, X-Forwarded-For", direct, http.Header{"X-Forwarded-For": {allowed}}, 403},
		{"untrusted peer, both", direct, http.Header{"X-Real-Ip": {allowed}, "X-Forwarded-For": {allowed}}, 403},
		{"untrusted peer, Forwarded", direct, http.Header{"Forwarded": {"for=" + allowed}}, 403},
		{"trusted proxy, X-Real-IP", proxied, http.Header{"X-Real-Ip": {allowed}}, 403},
		{"trusted proxy, X-Forwarded-For", proxied, http.Header{"X-Forwarded-For": {allowed}}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := tt.a.doHeader(http.MethodGet, "/api/v1/apps/walled/deployments", tt.a.admin, "", tt.header)
			if code != tt.want {
				t.Errorf("got %d %s, want %d", code, b, tt.want)
			}
			if code == 403 && !strings.Contains(string(b), "address 127.0.0.1 ") {
				t.Errorf("the denial names another address than the peer's: %s", b)
			}
		})
	}
}

// TestRotationKeepsTheTokenItCouldNotFile: when admin.token cannot be
// written, the rotation still answers with the new token, the one place
// left for it, since the old one is refused already.
func TestRotationKeepsTheTokenItCouldNotFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gone", "admin.token") // no such folder
	a := newTestAPI(t, func(o *Options) { o.AdminTokenFile = file })
	code, b := a.do(http.MethodPost, "/api/v1/admin/token", a.admin, "")
	var got AdminToken
	if err := json.Unmarshal(b, &got); err != nil || code != http.StatusOK || got.Token == "" || got.File != "" {
		t.Fatalf("rotating with an unwritable admin.token: got %d %s, want 200 with the token and no file", code, b)
	}
	if code, _ := a.do(http.MethodGet, "/api/v1/apps", a.admin, ""); code != http.StatusUnauthorized {
		t.Errorf("the old token after rotation: got %d, want 401", code)
	}
	if code, b := a.do(http.MethodGet, "/api/v1/apps", got.Token, ""); code != http.StatusOK {
		t.Errorf("the new token: got %d %s, want 200", code, b)
	}
}

// TestCrossSiteRequestsRefused: a browser caches the basic credentials it
// was asked for (the API's 401 offers basic auth, and an operator may
// open an SCM URL in it) and sends them with any other site's form post
// too, whose text/plain body can be JSON. A change a browser sends from
// another origin is refused before its token counts; the same request
// from a pipeline (no Origin, no Sec-Fetch-Site) or from this origin's
// own page works.
func TestCrossSiteRequestsRefused(t *testing.T) {
	a := newTestAPI(t, withSCM)
	a.createApp(store.App{Name: "promo"})
	admin := basic("admin", a.admin)
	for _, c := range []struct {
		name, method, path, body string
		header                   http.Header
	}{
		{"a form posting an app", "POST", "/api/v1/apps", `{"name":"evil","settings":{"env":{"A":"="}}}`,
			http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}},
		{"a form rotating the admin token", "POST", "/api/v1/admin/token", "", http.Header{"Origin": {"https://evil.example"}}},
		{"a form posting SCM settings", "POST", "/scm/promo/api/settings", `{"JAVA_TOOL_OPTIONS":"-javaagent:x","z":"="}`,
			http.Header{"Sec-Fetch-Site": {"same-site"}}},
	} {
		h := c.header.Clone()
		for k, v := range admin {
			h[k] = v
		}
		code, body, _ := a.send(c.method, c.path, "text/plain", c.body, h)
		if code != http.StatusForbidden || !strings.Contains(body, "another site") {
			t.Errorf("%s: %d %s, want 403 saying it came from another site", c.name, code, body)
		}
	}
	if apps, _ := a.st.Apps(t.Context()); len(apps) != 1 {
		t.Errorf("cross-site posts left %d apps, want 1", len(apps))
	}
	if a2, _ := a.st.App(t.Context(), "promo"); len(a2.Settings.Env) != 0 {
		t.Errorf("a cross-site post changed the settings: %v", a2.Settings.Env)
	}
	if code, body, _ := a.send("POST", "/api/v1/apps", "application/json", `{"name":"piped"}`, admin); code != http.StatusCreated {
		t.Errorf("a pipeline's post: %d %s", code, body)
	}
	same := http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {a.url}}
	for k, v := range admin {
		same[k] = v
	}
	if code, body, _ := a.send("POST", "/api/v1/apps", "application/json", `{"name":"own"}`, same); code != http.StatusCreated {
		t.Errorf("a post of this origin's page: %d %s", code, body)
	}
}
