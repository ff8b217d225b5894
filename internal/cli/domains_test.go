package cli

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with what the verbs print")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", path, got, want)
	}
}

// testDaemon is the daemon's API on loopback, wired as the daemon wires
// it (real store, deploy manager, router), with base domain example.test
// and a router on :8080 and :8443; it starts no instance.
type testDaemon struct {
	url, token string
	st         *store.Store
	mgr        *deploy.Manager
}

func newTestDaemon(t *testing.T) *testDaemon {
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
	mgr := deploy.New(deploy.Options{Store: st, Artifacts: arts, Router: router.New(router.Options{Logger: logger}), Logs: hub,
		DataDir: dir, BaseDomain: "example.test", HTTPS: true, Logger: logger})
	t.Cleanup(func() { mgr.Close(false) })
	token, err := api.EnsureAdminToken(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Store: st, Deploys: mgr, Artifacts: arts, Logs: hub, Logger: logger,
		Listeners: api.Listeners{HTTPPort: "8080", HTTPSPort: "8443"}}))
	t.Cleanup(srv.Close)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config")) // no login of the user's
	return &testDaemon{url: srv.URL, token: token, st: st, mgr: mgr}
}

// transcript runs each command line as `slipway` would and returns what
// it printed, errors included, after a "$ slipway …" line.
func (d *testDaemon) transcript(t *testing.T, lines ...[]string) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, args := range lines {
		out.WriteString("$ slipway " + strings.Join(args, " ") + "\n")
		root := newRoot()
		root.SetArgs(append([]string{"--url", d.url, "--token", d.token}, args...))
		root.SetOut(&out)
		root.SetErr(&out)
		if err := root.ExecuteContext(context.Background()); err != nil {
			out.WriteString("Error: " + sanitize(err.Error()) + "\n")
		}
	}
	return out.Bytes()
}

// TestDomainsVerbs pins what the domains verbs print, and the URLs of
// apps show, against a real API.
func TestDomainsVerbs(t *testing.T) {
	d := newTestDaemon(t)
	ctx := context.Background()
	created := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, app := range []string{"promo", "other", "empty"} {
		if err := d.st.CreateApp(ctx, store.App{Name: app, Created: created}); err != nil {
			t.Fatal(err)
		}
	}
	added := time.Now().Add(-3 * time.Hour) // "3h ago"
	for _, dom := range []store.Domain{{Name: "shop.example.com", App: "promo", ACME: true, Created: added}, {Name: "*.shop.example.com", App: "promo", Created: added}} {
		if _, _, err := d.st.AddDomain(ctx, dom, settings.MaxDomains); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.mgr.LoadDomains(ctx); err != nil {
		t.Fatal(err)
	}
	got := d.transcript(t,
		[]string{"domains", "list", "-a", "promo"},
		[]string{"domains", "list", "-a", "empty"},
		[]string{"domains", "add", "-a", "other", "Shop.Example.com"},
		[]string{"domains", "add", "-a", "other", "api.example.com"},
		[]string{"domains", "add", "-a", "other", "--acme", "tls.example.com"},
		[]string{"domains", "add", "-a", "other", "--acme", "*.example.com"},
		[]string{"domains", "add", "-a", "other", "bad_name.example.com"},
		[]string{"domains", "add", "-a", "other", "www.promo.example.test"},
		[]string{"domains", "remove", "-a", "promo", "*.shop.example.com"},
		[]string{"domains", "remove", "-a", "promo", "*.shop.example.com"},
		[]string{"domains", "list", "-a", "nobody"},
		[]string{"apps", "show", "promo"},
	)
	golden(t, "domains.txt", got)
}
