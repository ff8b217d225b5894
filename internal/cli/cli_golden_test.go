package cli

import (
	"archive/zip"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestChangesGolden: what the change verbs say when a change changes
// nothing, is saved for later, fails, is refused or queued while a
// deployment runs, and what 'deployments show' shows of a deployment,
// running or ended.
func TestChangesGolden(t *testing.T) {
	d := newTestDaemon(t)
	s := d.session()
	artifact := writeZip(t, t.TempDir())
	s.run(nil, "", "apps", "create", "promo", "--command", "echo boom >&2; exit 3")
	s.run(nil, "", "apps", "create", "spare")

	s.run(nil, "", "config", "unset", "-a", "promo", "NOPE")
	s.run(nil, "", "config", "set", "-a", "promo", "A=1", "--no-restart")
	s.run(nil, "", "config", "set", "-a", "promo", "A=1")
	s.run(nil, "", "scale", "-a", "promo", "1")
	s.run(nil, "", "scale", "-a", "spare", "2")
	s.run(nil, "", "scale", "-a", "spare", "2", "-o", "json")

	s.run(nil, "", "deploy", "-a", "promo", artifact, "-m", "first", "--author", "ana")
	s.run(nil, "", "deployments", "show", "-a", "promo", "1")
	s.run(nil, "", "deployments", "show", "-a", "promo", "1", "-f")

	// A deployment that never becomes ready runs until it is cancelled.
	s.run(nil, "", "config", "set-command", "-a", "promo", "exec sleep 60")
	s.run(nil, "", "deploy", "-a", "promo", artifact, "--no-wait", "--author", "ana")
	waitFor(t, 10*time.Second, "deployment 2 to warm up", func() bool {
		last := d.lastDeployment("promo")
		return len(last.Events) > 0 && last.Events[len(last.Events)-1].Step == store.StepWarmingUp
	})
	s.run(nil, "", "deployments", "show", "-a", "promo", "2")
	s.run(nil, "", "config", "set", "-a", "promo", "B=2")
	var queued syncBuffer
	args := []string{"config", "set", "-a", "promo", "B=2", "--no-restart", "--wait"}
	code := d.start(&queued, args...)
	args = append([]string{"slipway"}, args...)
	waitFor(t, 10*time.Second, "the queued change to say what it waits for", func() bool {
		return strings.Contains(queued.String(), "Waiting for deployment #2")
	})
	s.run(nil, "", "deploy", "cancel", "-a", "promo")
	exit := <-code
	s.add(args, queued.String(), exit)
	s.run(nil, "", "deployments", "show", "-a", "promo", "2")
	s.subst = []string{artifact, "app.zip"}
	s.golden("changes")
}

// TestAuthErrorsGolden: every refusal of a token says where the token
// came from; a URL without a scheme, or one that is not the API, is
// explained; login and logout.
func TestAuthErrorsGolden(t *testing.T) {
	d := newTestDaemon(t)
	s := d.session()
	s.run(nil, "", "apps", "create", "promo")
	cred, _ := d.run(nil, "", "credentials", "create", "-a", "promo", "-o", "json")
	token := between(cred, `"token": "`, `"`)
	s.run(nil, "", "apps", "list")
	s.run([]string{"SLIPWAY_TOKEN=slw_admin_forged"}, "", "apps", "list")
	s.run(nil, "", "--token", "slw_admin_forged", "apps", "list")
	s.run([]string{"SLIPWAY_TOKEN=" + token}, "", "apps", "list")
	empty := t.TempDir()
	s.run([]string{"SLIPWAY_DATA_DIR=" + empty}, "", "apps", "list")
	os.WriteFile(filepath.Join(d.dataDir, "admin.token"), []byte("slw_admin_stale\n"), 0o600)
	s.run(nil, "", "apps", "list")

	s.run(nil, "slw_admin_forged\n", "login", "--url", d.url)
	s.run(nil, d.admin+"\n", "login", "--url", d.url)
	os.WriteFile(filepath.Join(d.dataDir, "admin.token"), []byte(d.admin+"\n"), 0o600)
	d.st.PutCredential(t.Context(), store.Credential{ID: store.AdminCredential, Hash: api.HashToken("slw_admin_other")})
	s.run(nil, "", "apps", "list")
	s.run(nil, "", "logout")
	s.run(nil, "", "logout")

	s.run(nil, "", "--url", strings.TrimPrefix(d.url, "http://"), "apps", "list")
	front := httptest.NewServer(router.New(router.Options{}))
	defer front.Close()
	s.run(nil, "", "--url", front.URL, "apps", "list")
	s.subst = []string{token, "CREDENTIAL", front.URL, "http://ROUTER", empty, "EMPTY"}
	s.golden("auth")
}

// between returns what s holds between before and after.
func between(s, before, after string) string {
	_, rest, _ := strings.Cut(s, before)
	v, _, _ := strings.Cut(rest, after)
	return v
}

// TestAppsGolden: deleting an app asks first; https-only warns when the
// app would be unreachable; a log download says where it wrote.
func TestAppsGolden(t *testing.T) {
	d := newTestDaemon(t)
	s := d.session()
	s.run(nil, "", "apps", "create", "promo")
	s.run(nil, "", "apps", "create", "gone")
	s.run(nil, "", "apps", "delete", "gone")
	s.run(nil, "n\n", "apps", "delete", "gone")
	s.run(nil, "y\n", "apps", "delete", "gone")
	s.run(nil, "", "apps", "delete", "promo", "--yes")
	s.run(nil, "", "apps", "create", "promo")
	s.run(nil, "", "access", "https-only", "-a", "promo", "on")
	s.run(nil, "", "access", "https-only", "-a", "promo", "off")
	dir := t.TempDir()
	s.run(nil, "", "logs", "download", "-a", "promo", filepath.Join(dir, "logs.zip"))
	s.run(nil, "", "logs", "download", "-a", "promo", "-o", filepath.Join(dir, "logs.zip"))
	s.subst = []string{dir, "OUT"}
	s.golden("apps")
	if _, err := zip.OpenReader(filepath.Join(dir, "logs.zip")); err != nil {
		t.Errorf("the download wrote no zip: %v", err)
	}
}
