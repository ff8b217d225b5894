package web

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestSignin: a page without a session goes to sign-in; a bad token gets
// the API's message; a good one a session cookie that scripts cannot read
// and other sites' pages do not send; signing out ends it.
func TestSignin(t *testing.T) {
	d := newTestDash(t)
	c := d.client()
	if code, loc, _ := c.get("/apps/promo"); code != http.StatusSeeOther || loc != "/signin?next=%2Fapps%2Fpromo" {
		t.Errorf("without a session: %d to %q, want 303 to the sign-in page", code, loc)
	}
	c.get("/signin")
	code, _, body := c.post("/signin", c.form("token", "slw_nope_xyz"))
	if code != http.StatusUnauthorized || !strings.Contains(body, "the token is not valid: it is mistyped, or was revoked") {
		t.Errorf("a bad token: %d, want 401 with the API's message:\n%s", code, body)
	}
	code, _, body = c.post("/signin", url2("csrf", "forged", "token", d.admin))
	if code != http.StatusForbidden {
		t.Errorf("a sign-in without the form's token: %d, want 403:\n%s", code, body)
	}
	c.get("/signin")
	req, _ := http.NewRequest(http.MethodPost, d.url+"/signin", strings.NewReader(c.form("token", d.admin, "next", "//evil.example/").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("next=//evil.example/ led to %q, want /", loc)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Expires.IsZero() {
		t.Fatalf("the session cookie: %+v, want HttpOnly, SameSite=Strict, with an expiry", cookie)
	}
	if code, _, _ := c.get("/"); code != http.StatusOK {
		t.Fatalf("signed in, / answers %d", code)
	}
	if code, loc, _ := c.post("/signout", c.form()); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin") {
		t.Errorf("signing out: %d to %q", code, loc)
	}
	if code, loc, _ := c.get("/"); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin") {
		t.Errorf("signed out, / answers %d to %q, want the sign-in page", code, loc)
	}
	// The sign-in page says only its own notes, never a link's text.
	if _, _, body := c.get("/signin?note=" + url.QueryEscape("Slipway moved: paste your token at evil.example")); strings.Contains(body, "evil.example") {
		t.Errorf("the sign-in page shows a note taken from its URL:\n%s", body)
	}
	if _, _, body := c.get("/signin?note=signed-out"); !strings.Contains(body, "You are signed out.") {
		t.Errorf("the sign-in page after signing out does not say so:\n%s", body)
	}
}

func url2(kv ...string) map[string][]string {
	m := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = []string{kv[i+1]}
	}
	return m
}

// TestSessionsEndWithTheirToken: revoking a credential ends its sessions,
// and rotating the admin token ends the admin's, at the next request.
func TestSessionsEndWithTheirToken(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "promo"})
	id, token := d.credential("promo")
	ci, admin := d.client(), d.client()
	ci.signin(token)
	admin.signin(d.admin)
	if code, _, _ := ci.get("/apps/promo"); code != http.StatusOK {
		t.Fatalf("the credential's session: %d", code)
	}
	if code, _, body := admin.post("/apps/promo/credentials/revoke", admin.form("id", id)); code != http.StatusSeeOther {
		t.Fatalf("revoking: %d\n%s", code, body)
	}
	if code, loc, _ := ci.get("/apps/promo"); code != http.StatusSeeOther || !strings.Contains(loc, "note=ended") {
		t.Errorf("after its credential was revoked, its session got %d to %q, want the sign-in page saying it ended", code, loc)
	}
	if _, err := api.ReplaceAdminToken(t.Context(), d.st, ""); err != nil {
		t.Fatal(err)
	}
	if code, loc, _ := admin.get("/"); code != http.StatusSeeOther || !strings.Contains(loc, "note=ended") {
		t.Errorf("after the admin token was rotated, the admin's session got %d to %q, want the sign-in page", code, loc)
	}
}

// TestScopes: a deploy credential's session may do what its token may do
// through the API, and gets the API's refusals otherwise.
func TestScopes(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "promo"})
	d.createApp(store.App{Name: "other"})
	_, token := d.credential("promo")
	c := d.client()
	c.signin(token)
	tests := []struct {
		method, path string
		want         int
		say          string
	}{
		{"GET", "/", http.StatusSeeOther, ""},
		{"GET", "/apps/promo", http.StatusOK, "promo"},
		{"GET", "/apps/promo/deploy", http.StatusOK, "Upload and deploy"},
		{"GET", "/apps/promo/deployments", http.StatusOK, "No deployments yet"},
		{"GET", "/apps/promo/logs", http.StatusOK, "Logs of promo"},
		{"GET", "/live", http.StatusForbidden, "this needs the admin token"},
		{"GET", "/apps/promo/settings", http.StatusForbidden, "this token may only deploy, and read the status and logs of, app promo; this needs the admin token"},
		{"GET", "/apps/promo/access", http.StatusForbidden, "this needs the admin token"},
		{"POST", "/apps/promo/scale", http.StatusForbidden, "this needs the admin token"},
		{"POST", "/apps", http.StatusForbidden, "this needs the admin token"},
		{"GET", "/apps/other", http.StatusForbidden, "this token belongs to app promo and may not touch app other"},
		{"GET", "/apps/other/logs/stream", http.StatusForbidden, "this token belongs to app promo and may not touch app other"},
		{"POST", "/apps/other/cancel", http.StatusForbidden, "this token belongs to app promo and may not touch app other"},
	}
	for _, tt := range tests {
		var code int
		var body string
		if tt.method == "GET" {
			code, _, body = c.get(tt.path)
		} else {
			code, _, body = c.post(tt.path, c.form("instances", "2", "name", "x"))
		}
		if code != tt.want || !strings.Contains(body, htmlEscape(tt.say)) {
			t.Errorf("%s %s: %d, want %d saying %q:\n%s", tt.method, tt.path, code, tt.want, tt.say, body)
		}
	}
}

// TestDeployAccessRules: the app's deploy rules apply to the dashboard's
// deploy pages as to the API's deploy endpoints, for the admin too.
func TestDeployAccessRules(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "promo"})
	c := d.client()
	c.signin(d.admin)
	if code, _, body := c.post("/apps/promo/access/rules", c.form("scope", "deploy", "priority", "100", "action", "allow", "network", "10.0.0.0/8")); code != http.StatusSeeOther {
		t.Fatalf("adding a deploy rule: %d\n%s", code, body)
	}
	code, _, body := c.get("/apps/promo/deployments")
	if want := "address 127.0.0.1 may not reach the deploy endpoints of app promo"; code != http.StatusForbidden || !strings.Contains(body, want) {
		t.Errorf("deployments from a denied address: %d, want 403 saying %q:\n%s", code, want, body)
	}
	if code, _, _ := c.get("/apps/promo"); code != http.StatusOK {
		t.Errorf("the overview (not a deploy page) from a denied address: %d, want 200", code)
	}
}

// TestCSRF: every form without the session's token is refused before it
// does anything, as is one with another session's.
func TestCSRF(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "promo"})
	c, other := d.client(), d.client()
	c.signin(d.admin)
	other.signin(d.admin)
	for _, form := range []map[string][]string{
		{"name": {"evil"}},
		{"name": {"evil"}, "csrf": {""}},
		{"name": {"evil"}, "csrf": {other.csrf}},
	} {
		code, _, body := c.post("/apps", form)
		if code != http.StatusForbidden || !strings.Contains(body, "CSRF token is missing or wrong") {
			t.Errorf("creating an app with csrf %q: %d\n%s", form["csrf"], code, body)
		}
	}
	if _, err := d.st.App(t.Context(), "evil"); err == nil {
		t.Errorf("a form without the session's CSRF token created an app")
	}
	// An upload's token is its first field, or a script's header.
	req, _ := http.NewRequest(http.MethodPost, d.url+"/apps/promo/deploy", strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jar\"\r\n\r\nPK\r\n--x--\r\n"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an upload without the token: %d, want 403", resp.StatusCode)
	}
	if deps, _ := d.st.Deployments(t.Context(), "promo"); len(deps) != 0 {
		t.Errorf("an upload without the token made %d deployments", len(deps))
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("'", "&#39;", `"`, "&#34;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TestErrorsAreTheAPIs: what goes wrong says what the API says, with its
// status.
func TestErrorsAreTheAPIs(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "promo"})
	c := d.client()
	c.signin(d.admin)
	for _, tt := range []struct {
		path string
		form []string
		want int
		say  string
	}{
		{"/apps/promo/cancel", nil, http.StatusConflict, "no deployment is running for app promo, or it has already switched traffic"},
		{"/apps/promo/restart", nil, http.StatusConflict, "the app has no live release"},
		{"/apps", []string{"name", "Bad_Name"}, http.StatusBadRequest, "invalid app name"},
		{"/apps", []string{"name", "promo"}, http.StatusConflict, "an app named promo already exists"},
		{"/apps/promo/access/rules", []string{"scope", "app", "priority", "1", "action", "allow", "network", "300.0.0.0/8"}, http.StatusBadRequest, "300.0.0.0/8"},
		{"/apps/promo/domains", []string{"name", "nope"}, http.StatusBadRequest, "nope"},
		{"/apps/nowhere/scale", []string{"instances", "2"}, http.StatusNotFound, "no app named nowhere"},
	} {
		code, _, body := c.post(tt.path, c.form(tt.form...))
		if code != tt.want || !strings.Contains(body, htmlEscape(tt.say)) {
			t.Errorf("POST %s %v: %d, want %d saying %q:\n%s", tt.path, tt.form, code, tt.want, tt.say, body)
		}
	}
}

// TestRevokedSessionStreamsEnd: a stream a session opened (a live part,
// the log stream) ends once the session's credential is revoked, rather
// than showing the app to a stranger for as long as the page stays open.
func TestRevokedSessionStreamsEnd(t *testing.T) {
	d := newTestDash(t)
	d.createApp(store.App{Name: "promo"})
	id, token := d.credential("promo")
	ci, admin := d.client(), d.client()
	ci.signin(token)
	admin.signin(d.admin)
	var ended []chan error
	for _, path := range []string{"/apps/promo/live", "/apps/promo/logs/stream"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, d.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := ci.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d, want a stream", path, resp.StatusCode)
		}
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
		ended = append(ended, done)
	}
	if code, _, body := admin.post("/apps/promo/credentials/revoke", admin.form("id", id)); code != http.StatusSeeOther {
		t.Fatalf("revoking: %d\n%s", code, body)
	}
	for i, done := range ended {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("stream %d still open 5 s after its credential was revoked", i)
		}
	}
}
