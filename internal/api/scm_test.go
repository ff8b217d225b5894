package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/scm"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// withSCM serves the App Service deploy endpoints, as the daemon does.
func withSCM(o *Options) {
	o.SCM = scm.New(scm.Options{Store: o.Store, Deploys: o.Deploys, Logs: o.Logs, MaxUpload: o.Artifacts.MaxUpload(), Logger: o.Logger})
}

// basic is the Authorization header of App Service's basic auth.
func basic(user, password string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}}
}

// scmRoutes are the SCM site's routes, %s for the app, each also without
// /api.
var scmRoutes = []struct{ method, path string }{
	{"POST", "/scm/%s/api/publish?type=jar"},
	{"PUT", "/scm/%s/api/publish?type=jar"},
	{"POST", "/scm/%s/api/zipdeploy"},
	{"POST", "/scm/%s/api/wardeploy"},
	{"GET", "/scm/%s/api/deployments"},
	{"GET", "/scm/%s/api/deployments/latest"},
	{"GET", "/scm/%s/api/deployments/1"},
	{"PUT", "/scm/%s/api/deployments/1"},
	{"GET", "/scm/%s/api/deployments/1/log"},
	{"GET", "/scm/%s/api/settings"},
	{"POST", "/scm/%s/api/settings"},
	{"DELETE", "/scm/%s/api/settings/GREETING"},
	{"GET", "/scm/%s/api/logstream"},
	{"GET", "/scm/%s/api/logs/docker/zip"},
	{"GET", "/scm/%s/diagnostics/runtime"},
	{"GET", "/scm/%s/api/isdeploying"},
}

// TestSCMAuth: the SCM site is behind the API's own checks, as deploy
// endpoints: no or a wrong credential gets 401 with a basic challenge,
// another app's credential and a deploy rule 403, on every route, with or
// without /api; nothing is recorded.
func TestSCMAuth(t *testing.T) {
	a := newTestAPI(t, withSCM)
	a.createApp(store.App{Name: "promo"})
	a.createApp(store.App{Name: "walled"})
	a.denyLoopback("walled")
	a.createApp(store.App{Name: "other"})
	mine, other := a.credential("promo"), a.credential("other")
	walled := a.credential("walled")
	callers := []struct {
		name   string
		app    string
		header http.Header
		want   int
	}{
		{"anonymous", "promo", nil, http.StatusUnauthorized},
		{"a wrong password", "promo", basic("$promo", mine.Token+"x"), http.StatusUnauthorized},
		{"a password that is no token", "promo", basic("$promo", "hunter2"), http.StatusUnauthorized},
		{"another app's credential as $promo", "promo", basic("$promo", other.Token), http.StatusForbidden},
		{"another app's credential as bearer", "promo", http.Header{"Authorization": {"Bearer " + other.Token}}, http.StatusForbidden},
		{"the app's credential outside its deploy rule", "walled", basic("$walled", walled.Token), http.StatusForbidden},
		{"the admin outside the app's deploy rule", "walled", http.Header{"Authorization": {"Bearer " + a.admin}}, http.StatusForbidden},
	}
	for _, c := range callers {
		for _, rt := range scmRoutes {
			for _, path := range []string{fmt.Sprintf(rt.path, c.app), strings.Replace(fmt.Sprintf(rt.path, c.app), "/api/", "/", 1)} {
				code, b, h := a.send(rt.method, path, "application/octet-stream", "PK", c.header)
				if code != c.want {
					t.Errorf("%s: %s %s: %d %s, want %d", c.name, rt.method, path, code, b, c.want)
				}
				if code == http.StatusUnauthorized && !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), ","), "Basic") {
					t.Errorf("%s: %s %s: 401 without a Basic challenge: %q", c.name, rt.method, path, h.Values("WWW-Authenticate"))
				}
			}
		}
	}
	for _, app := range []string{"promo", "walled"} {
		if deps, _ := a.st.Deployments(t.Context(), app); len(deps) != 0 {
			t.Errorf("refused callers left %d deployments of %s", len(deps), app)
		}
	}
}

// send sends a request with a body of a content type and headers, and
// returns the answer's status, body and headers.
func (a *testAPI) send(method, path, contentType, body string, header http.Header) (int, string, http.Header) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestSCMRefusals: calls and parameters Slipway does not serve get 400
// with a text saying what to send; nothing is recorded or stored.
func TestSCMRefusals(t *testing.T) {
	a := newTestAPIWith(t, artifact.Options{MaxUpload: 1000}, withSCM)
	a.createApp(store.App{Name: "promo"})
	me := basic("$promo", a.credential("promo").Token)
	tests := []struct {
		name, method, path, contentType, body string
		want                                  int
		says                                  string
	}{
		{"an unknown type", "POST", "/scm/promo/api/publish?type=ear", "application/octet-stream", "PK", 400, "send type=jar, war, zip or startup"},
		{"no type", "POST", "/scm/promo/api/publish", "application/octet-stream", "PK", 400, "type is missing"},
		{"a path", "POST", "/scm/promo/api/publish?type=jar&path=/home/site/wwwroot/x.jar", "application/octet-stream", "PK", 400, "leave path out"},
		{"a bad boolean", "POST", "/scm/promo/api/publish?type=jar&async=maybe", "application/octet-stream", "PK", 400, "true or false"},
		{"a package URL", "POST", "/scm/promo/api/zipdeploy", "application/json", `{"packageUri": "http://169.254.169.254/"}`, 400, "send the file itself"},
		{"a war under another name", "POST", "/scm/promo/api/wardeploy?name=shop", "application/octet-stream", "PK", 400, "ROOT"},
		{"an upload past the bound", "POST", "/scm/promo/api/zipdeploy", "application/octet-stream", strings.Repeat("x", 1001), 413, "limit"},
		{"not an archive", "POST", "/scm/promo/api/zipdeploy", "application/octet-stream", "not a zip", 400, "not a valid"},
		{"a record with another status", "PUT", "/scm/promo/api/deployments/42", "application/json", `{"status": 1}`, 400, "3 (failed) or 4"},
		{"a record with a bad id", "PUT", "/scm/promo/api/deployments/a%20b", "application/json", `{"status": 4}`, 400, "invalid deployment details: a record's id may hold letters, digits"},
		{"settings that are not strings", "POST", "/scm/promo/api/settings", "application/json", `{"A": 1}`, 400, "JSON object of strings"},
		{"a control character in the deployer", "POST", "/scm/promo/api/zipdeploy?deployer=a%1bb", "application/octet-stream", "PK", 400, "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, h := a.send(tt.method, tt.path, tt.contentType, tt.body, me)
			if code != tt.want || !strings.Contains(body, tt.says) || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
				t.Errorf("%d %s %q, want %d saying %q as text", code, h.Get("Content-Type"), body, tt.want, tt.says)
			}
		})
	}
	if deps, _ := a.st.Deployments(t.Context(), "promo"); len(deps) != 0 {
		t.Errorf("refused calls left %d deployments", len(deps))
	}
}

// TestSCMRecordsAndReads: a pipeline's PUT of a record is kept, read-only,
// under its id, and found by every read; a second PUT of the id is 409.
// The settings show as a flat object with secrets masked.
func TestSCMRecordsAndReads(t *testing.T) {
	a := newTestAPI(t, withSCM)
	a.createApp(store.App{Name: "promo", Settings: settings.Settings{Env: map[string]string{"GREETING": "hi", "DB_PASSWORD": "hunter2"}, Secrets: []string{"DB_PASSWORD"}}})
	me := basic("$promo", a.credential("promo").Token)
	if code, body, _ := a.send("GET", "/scm/promo/api/deployments/latest", "", "", me); code != http.StatusNotFound {
		t.Errorf("latest of an app without deployments: %d %s, want 404", code, body)
	}
	record := `{"id": "17000123", "status": 4, "active": true, "deployer": "VSTS", "author": "Ana", "details": "x",
		"message": "{\"type\":\"deployment\",\"commitId\":\"abcdef0123\",\"buildNumber\":\"20260102.1\",\"repoName\":\"promo\"}"}`
	code, body, _ := a.send("PUT", "/scm/promo/api/deployments/17000123", "application/json", record, me)
	var d scm.Deployment
	if code != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil {
		t.Fatalf("PUT of a record: %d %s", code, body)
	}
	if d.ID != "17000123" || d.Status != 4 || !d.IsReadonly || d.Active || d.Deployer != "VSTS" || d.Author != "Ana" ||
		d.Message != "commit abcdef0 in promo, build 20260102.1" || !strings.HasSuffix(d.URL, "/scm/promo/api/deployments/17000123") {
		t.Errorf("the record: %+v", d)
	}
	if code, body, _ := a.send("PUT", "/scm/promo/deployments/17000123", "application/json", record, me); code != http.StatusConflict {
		t.Errorf("a second PUT of the id: %d %s, want 409", code, body)
	}
	for _, path := range []string{"/scm/promo/api/deployments/17000123", "/scm/promo/api/deployments/latest", "/scm/promo/deployments"} {
		if code, body, _ := a.send("GET", path, "", "", me); code != http.StatusOK || !strings.Contains(body, `"id": "17000123"`) {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body, _ := a.send("GET", "/scm/promo/api/deployments/17000123/log", "", "", me); code != http.StatusOK || !strings.Contains(body, "VSTS reports as succeeded") {
		t.Errorf("the record's log: %d %s", code, body)
	}
	code, body, _ = a.send("GET", "/scm/promo/api/settings", "", "", me)
	if code != http.StatusOK || strings.TrimSpace(body) != "{\n  \"DB_PASSWORD\": \"****\",\n  \"GREETING\": \"hi\"\n}" {
		t.Errorf("settings: %d %s", code, body)
	}
	// A change that changes nothing, or one saved for the first
	// deployment (the app has no live release): done, 204.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/scm/promo/api/settings", `{"GREETING": "hi", "DB_PASSWORD": "****"}`},
		{"DELETE", "/scm/promo/api/settings/NOT_SET", ""},
		{"POST", "/scm/promo/api/settings", `{"GREETING": "hola"}`},
	} {
		if code, body, _ := a.send(c.method, c.path, "application/json", c.body, me); code != http.StatusNoContent {
			t.Errorf("%s %s %s: %d %s, want 204", c.method, c.path, c.body, code, body)
		}
	}
	if app, _ := a.st.App(t.Context(), "promo"); app.Settings.Env["GREETING"] != "hola" || app.Settings.Env["DB_PASSWORD"] != "hunter2" {
		t.Errorf("the settings after the changes: %v", app.Settings.Env)
	}
	if code, body, _ := a.send("GET", "/scm/promo/api/isdeploying", "", "", me); code != http.StatusOK || !strings.Contains(body, `"False"`) {
		t.Errorf("isdeploying: %d %s", code, body)
	}
	if code, body, _ := a.send("GET", "/scm/promo/diagnostics/runtime", "", "", me); code != http.StatusOK || !strings.Contains(body, `"os_name": "Unix`) {
		t.Errorf("runtime: %d %s", code, body)
	}
	// The native API shows the record with its deployer.
	var deps []Deployment
	if code, b := a.do("GET", "/api/v1/apps/promo/deployments", a.admin, ""); code != 200 || json.Unmarshal(b, &deps) != nil || len(deps) != 1 ||
		deps[0].Kind != store.KindRecord || deps[0].Deployer != "VSTS" || deps[0].ExternalID != "17000123" {
		t.Errorf("the native API's deployments: %d %s", code, b)
	}
}

// TestCredentialAnswerNamesTheSCMSite: a new credential comes with the
// app's SCM site as the caller reaches it, for a publish profile.
func TestCredentialAnswerNamesTheSCMSite(t *testing.T) {
	a := newTestAPI(t, withSCM)
	a.createApp(store.App{Name: "promo"})
	c := a.credential("promo")
	if want := a.url + "/scm/promo"; c.SCMURL != want {
		t.Errorf("scm_url %q, want %q", c.SCMURL, want)
	}
}

// TestStreamsEndWithTheirToken: a log stream held open — the SCM site's,
// the API's — ends once its credential is revoked, within RecheckEvery.
func TestStreamsEndWithTheirToken(t *testing.T) {
	a := newTestAPI(t, withSCM)
	a.createApp(store.App{Name: "promo"})
	c := a.credential("promo")
	var ended []chan struct{}
	for _, path := range []string{"/scm/promo/api/logstream", "/api/v1/apps/promo/logs?follow=1"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = basic("$promo", c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d, want a stream", path, resp.StatusCode)
		}
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, resp.Body); close(done) }()
		ended = append(ended, done)
	}
	if code, b := a.do(http.MethodDelete, "/api/v1/apps/promo/credentials/"+c.ID, a.admin, ""); code/100 != 2 {
		t.Fatalf("revoking: %d %s", code, b)
	}
	for i, done := range ended {
		select {
		case <-done:
		case <-time.After(RecheckEvery + 3*time.Second):
			t.Errorf("stream %d still open after its credential was revoked", i)
		}
	}
}

// TestSCMLogStreamsBound: one credential cannot hold log streams open
// without end: past logs.MaxSubscribers of the app, the next is 429 with
// a text saying what to do.
func TestSCMLogStreamsBound(t *testing.T) {
	a := newTestAPI(t, withSCM)
	a.createApp(store.App{Name: "promo"})
	me := basic("$promo", a.credential("promo").Token)
	open := func() *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+"/scm/promo/api/logstream", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = me
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for i := range logs.MaxSubscribers {
		if resp := open(); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, resp.StatusCode)
		}
	}
	resp := open()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("one stream too many: %d, want 429", resp.StatusCode)
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "close some") {
		t.Errorf("one stream too many: %q, want a text saying what to do", b)
	}
}
