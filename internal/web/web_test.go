package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/scm"
	"github.com/slipway-dev/slipway/internal/store"
)

// testDash is the dashboard in front of the API, served on loopback and
// wired as the daemon wires it: a real store (embedded etcd), deploy
// manager, router and log hub. The tests start no instance: they seed the
// store with records, as the API's tests do.
type testDash struct {
	t     *testing.T
	url   string
	admin string
	st    *store.Store
	mgr   *deploy.Manager
	srv   *api.Server
}

func newTestDash(t *testing.T) *testDash {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	arts, err := artifact.NewStore(artifact.Options{Dir: filepath.Join(dir, "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	hub := logs.NewHub(logs.Options{Dir: filepath.Join(dir, "logs"), Logger: logger})
	t.Cleanup(hub.Close)
	// A JDK of Java 17 whose java is a shell script: the tests start no
	// instance, and the pages would show the machine's own JDK otherwise.
	jdk := filepath.Join(dir, "jvm", "jdk-17")
	if err := os.MkdirAll(filepath.Join(jdk, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(jdk, "release"), []byte("JAVA_VERSION=\"17.0.99\"\n"), 0o644)
	os.WriteFile(filepath.Join(jdk, "bin", "java"), []byte("#!/bin/sh\nexit 1\n"), 0o755)
	mgr := deploy.New(deploy.Options{Store: st, Artifacts: arts, Router: router.New(router.Options{Logger: logger}), Logs: hub,
		DataDir: dir, BaseDomain: "example.test", Logger: logger, JDKDir: filepath.Join(dir, "jvm"),
		Java: filepath.Join(jdk, "bin", "java"), TomcatLib: filepath.Join(dir, "no-tomcat")})
	t.Cleanup(func() { mgr.Close(false) })
	admin, err := api.EnsureAdminToken(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	// The SCM site (for publish profiles, with a fixed public URL) and the
	// leases, as the daemon has them.
	site := scm.New(scm.Options{Store: st, Deploys: mgr, Logs: hub, MaxUpload: arts.MaxUpload(), PublicURL: "https://deploy.example.test", Logger: logger})
	srv := api.New(api.Options{Store: st, Deploys: mgr, Artifacts: arts, Logs: hub, Logger: logger, SCM: site,
		Leases: lease.New(lease.Options{Store: st, Logger: logger})})
	hs := httptest.NewServer(New(Options{API: srv, Deploys: mgr, Logger: logger, LiveEvery: 50 * time.Millisecond}))
	t.Cleanup(hs.Close)
	return &testDash{t: t, url: hs.URL, admin: admin, st: st, mgr: mgr, srv: srv}
}

// client is a browser of the dashboard: it keeps cookies, and does not
// follow redirects, so a test sees them.
type client struct {
	t    *testing.T
	d    *testDash
	http *http.Client
	csrf string // the session's token, read from the last page
}

func (d *testDash) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: d.t, d: d, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([A-Za-z0-9_-]+)"`)

// get fetches a page and returns its status, its Location and its body;
// it remembers the page's CSRF token.
func (c *client) get(path string) (int, string, string) {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil)
}

func (c *client) post(path string, form url.Values) (int, string, string) {
	c.t.Helper()
	return c.do(http.MethodPost, path, form)
}

func (c *client) do(method, path string, form url.Values) (int, string, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.d.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if m := csrfInput.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// signin signs the client in with token and fails the test unless it
// worked.
func (c *client) signin(token string) {
	c.t.Helper()
	c.get("/signin")
	code, loc, body := c.post("/signin", url.Values{"csrf": {c.csrf}, "token": {token}, "next": {"/"}})
	if code != http.StatusSeeOther || loc != "/" {
		c.t.Fatalf("signing in: %d to %q:\n%s", code, loc, body)
	}
	c.get("/") // for the session's CSRF token
}

// form is a form of the session, its token included.
func (c *client) form(kv ...string) url.Values {
	v := url.Values{"csrf": {c.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func (d *testDash) createApp(a store.App) {
	d.t.Helper()
	if err := d.st.CreateApp(context.Background(), a); err != nil {
		d.t.Fatal(err)
	}
}

// credential makes a deploy credential of app and returns its token.
func (d *testDash) credential(app string) (id, token string) {
	d.t.Helper()
	req := httptest.NewRequestWithContext(d.t.Context(), http.MethodPost, "/", nil)
	nc, err := d.srv.CreateCredential(req, app, api.CreateCredentialRequest{Name: "ci"})
	if err != nil {
		d.t.Fatal(err)
	}
	return nc.ID, nc.Token
}
