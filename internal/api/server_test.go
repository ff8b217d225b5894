package api

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/store"
)

// testAPI is the API served on loopback, wired as the daemon wires it: a
// real store (embedded etcd), deploy manager, router and log hub. The
// tests start no instance: they seed the store with records instead.
type testAPI struct {
	t     *testing.T
	url   string
	admin string // the admin token
	st    *store.Store
	mgr   *deploy.Manager
	// jdk is the home of the node's one JDK, whose path the golden files
	// show as /usr/lib/jvm/jdk-17.
	jdk string
}

// fakeJDK makes a JDK directory of Java 17 under dir: a release file and
// a bin/java that is a shell script. The tests start no instance; a real
// JDK's version and path would differ from machine to machine, and the
// golden files pin what the API says of the JDK.
func fakeJDK(t *testing.T, dir string) string {
	t.Helper()
	home := filepath.Join(dir, "jdk-17")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "release"), []byte("IMPLEMENTOR=\"Test\"\nJAVA_VERSION=\"17.0.99\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "bin", "java"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return home
}

// newTestAPI starts the API; opts, if any, change its Options (the
// store, deploy manager, artifacts and logs are set already).
func newTestAPI(t *testing.T, opts ...func(*Options)) *testAPI {
	t.Helper()
	return newTestAPIWith(t, artifact.Options{}, opts...)
}

// newTestAPIWith is newTestAPI with an artifact store configured by ao
// (its Dir is set here).
func newTestAPIWith(t *testing.T, ao artifact.Options, opts ...func(*Options)) *testAPI {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ao.Dir = filepath.Join(dir, "artifacts")
	arts, err := artifact.NewStore(ao)
	if err != nil {
		t.Fatal(err)
	}
	hub := logs.NewHub(logs.Options{Dir: filepath.Join(dir, "logs"), Logger: logger})
	t.Cleanup(hub.Close)
	jdk := fakeJDK(t, filepath.Join(dir, "jvm"))
	mgr := deploy.New(deploy.Options{Store: st, Artifacts: arts, Router: router.New(router.Options{Logger: logger}), Logs: hub,
		DataDir: dir, BaseDomain: "example.test", Logger: logger,
		JDKDir: filepath.Join(dir, "jvm"), Java: filepath.Join(jdk, "bin", "java"), TomcatLib: filepath.Join(dir, "no-tomcat")})
	t.Cleanup(func() { mgr.Close(false) })
	admin, err := EnsureAdminToken(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Store: st, Deploys: mgr, Artifacts: arts, Logs: hub, Logger: logger}
	for _, fn := range opts {
		fn(&o)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return &testAPI{t: t, url: srv.URL, admin: admin, st: st, mgr: mgr, jdk: jdk}
}

// do sends a request with token as a bearer token (none when empty) and
// returns the answer's status and body.
func (a *testAPI) do(method, path, token, body string) (int, []byte) {
	a.t.Helper()
	return a.doHeader(method, path, token, body, nil)
}

// doHeader is do with more request headers.
func (a *testAPI) doHeader(method, path, token, body string, header http.Header) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// createApp records an app straight in the store.
func (a *testAPI) createApp(app store.App) {
	a.t.Helper()
	if err := a.st.CreateApp(context.Background(), app); err != nil {
		a.t.Fatal(err)
	}
}

// credential makes a credential of app through the API and returns it
// with its token.
func (a *testAPI) credential(app string) NewCredential {
	a.t.Helper()
	code, b := a.do(http.MethodPost, "/api/v1/apps/"+app+"/credentials", a.admin, `{"name": "ci"}`)
	if code != http.StatusCreated {
		a.t.Fatalf("creating a credential of %s: %d %s", app, code, b)
	}
	var c NewCredential
	if err := json.Unmarshal(b, &c); err != nil {
		a.t.Fatal(err)
	}
	return c
}

func TestAuthScopes(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "promo"})
	a.createApp(store.App{Name: "other"})
	cred := a.credential("promo")
	revoked := a.credential("promo")
	if code, b := a.do(http.MethodDelete, "/api/v1/apps/promo/credentials/"+revoked.ID, a.admin, ""); code != http.StatusNoContent {
		t.Fatalf("revoking: %d %s", code, b)
	}
	tests := []struct {
		name         string
		method, path string
		token        string
		want         int
	}{
		{"liveness needs no token", "GET", "/healthz", "", 200},
		{"no token", "GET", "/api/v1/apps", "", 401},
		{"a token that is none", "GET", "/api/v1/apps", "slw_nope_xyz", 401},
		{"a revoked token", "GET", "/api/v1/apps/promo/status", revoked.Token, 401},
		{"a mistyped token", "GET", "/api/v1/apps/promo/status", cred.Token + "x", 401},
		{"admin lists apps", "GET", "/api/v1/apps", a.admin, 200},
		{"app token may not list apps", "GET", "/api/v1/apps", cred.Token, 403},
		{"app token reads its app's status", "GET", "/api/v1/apps/promo/status", cred.Token, 200},
		{"app token lists its app's deployments", "GET", "/api/v1/apps/promo/deployments", cred.Token, 200},
		{"app token may not read another app", "GET", "/api/v1/apps/other/status", cred.Token, 403},
		{"app token may not change settings", "PATCH", "/api/v1/apps/promo/settings", cred.Token, 403},
		{"any token may ask who it is", "GET", "/api/v1/whoami", cred.Token, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, b := a.do(tt.method, tt.path, tt.token, ""); code != tt.want {
				t.Errorf("%s %s: got %d (%s), want %d", tt.method, tt.path, code, b, tt.want)
			}
		})
	}
}

func TestBasicAuthAndWhoami(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "promo"})
	cred := a.credential("promo")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+"/api/v1/whoami", nil)
	req.SetBasicAuth("$promo", cred.Token) // as an App Service pipeline sends it
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Principal
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if want := (Principal{Credential: cred.ID, App: "promo"}); resp.StatusCode != 200 || got != want {
		t.Errorf("whoami: got %d %+v, want 200 %+v", resp.StatusCode, got, want)
	}
}

func TestDeployAccessRules(t *testing.T) {
	a := newTestAPI(t)
	a.createApp(store.App{Name: "promo"})
	// An allow rule makes every other address denied, loopback included.
	if code, b := a.do(http.MethodPost, "/api/v1/apps/promo/access/rules", a.admin,
		`{"scope": "deploy", "priority": 100, "action": "allow", "network": "10.0.0.0/8"}`); code != 200 {
		t.Fatalf("adding a rule: %d %s", code, b)
	}
	code, b := a.do(http.MethodGet, "/api/v1/apps/promo/deployments", a.admin, "")
	if want := "address 127.0.0.1 may not reach the deploy endpoints of app promo"; code != 403 || !strings.Contains(string(b), want) {
		t.Errorf("deploy endpoint from a denied address: got %d %s, want 403 saying %q", code, b, want)
	}
	if code, b := a.do(http.MethodGet, "/api/v1/apps/promo/status", a.admin, ""); code != 200 {
		t.Errorf("status (not a deploy endpoint): got %d %s, want 200", code, b)
	}
}

// TestUploadNameBounded: the file name an upload is recorded under is
// bounded and plain text, whichever way it comes (the filename parameter,
// the jar inside a zip sent to the SCM site), and a bad one is refused
// with 400 before anything is stored.
func TestUploadNameBounded(t *testing.T) {
	a := newTestAPI(t, withSCM)
	a.createApp(store.App{Name: "promo"})
	me := basic("$promo", a.credential("promo").Token)
	long := strings.Repeat("a", artifact.MaxNameBytes-3) + ".jar"
	tests := []struct {
		name, path, body string
		header           http.Header
		want             int
		says             string
	}{
		{"a name too long", "/api/v1/apps/promo/deployments?filename=" + long, "PK", nil, 400,
			"the name is 256 bytes long; the limit is 255: rename the file"},
		{"a path too long", "/api/v1/apps/promo/deployments?filename=" + strings.Repeat("dir/", 64) + "app.jar", "PK", nil, 400,
			"send its name without the path"},
		{"a control character", "/api/v1/apps/promo/deployments?filename=app%1b%5b2J.jar", "PK", nil, 400,
			"is not text (a control character, or not UTF-8): rename the file"},
		{"not UTF-8", "/api/v1/apps/promo/deployments?filename=app%ff.jar", "PK", nil, 400, "rename the file"},
		{"a jar in a zip with a name too long", "/scm/promo/api/zipdeploy", zipOf(t, long), me, 400,
			"the jar or war inside the zip: invalid artifact file name: the name is 256 bytes long"},
		// The bound itself passes: the upload is then refused for what it is.
		{"a name at the bound", "/api/v1/apps/promo/deployments?filename=" + long[1:], "PK", nil, 400, "not a valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{"Authorization": {"Bearer " + a.admin}}
			}
			code, body, _ := a.send(http.MethodPost, tt.path, "application/octet-stream", tt.body, h)
			if code != tt.want || !strings.Contains(body, tt.says) {
				t.Errorf("%d %q, want %d saying %q", code, body, tt.want, tt.says)
			}
		})
	}
	if deps, _ := a.st.Deployments(t.Context(), "promo"); len(deps) != 0 {
		t.Errorf("refused uploads left %d deployments", len(deps))
	}
	if rels, _ := a.st.Releases(t.Context(), "promo"); len(rels) != 0 {
		t.Errorf("refused uploads left %d releases", len(rels))
	}
}

// zipOf is a zip that wraps one jar named name, as the Azure Pipelines
// tasks send a jar.
func zipOf(t *testing.T, name string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "not read: the name is refused first")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
