package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// call sends an API request with the given Authorization header value
// ("" for none) and returns the status and body.
func (d *daemon) call(auth, method, path string, body io.Reader) (int, string) {
	d.t.Helper()
	req := d.request(method, path, body)
	req.Header.Del("Authorization")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestAuthentication: every route but the liveness check needs a token;
// the admin token is made once, printed once, kept as a hash, and in
// admin.token for the local CLI.
func TestAuthentication(t *testing.T) {
	d := startDaemon(t)
	if m := fileMode(t, filepath.Join(d.dataDir, "admin.token")); m != 0o600 {
		t.Errorf("admin.token has mode %o, want 600", m)
	}
	// 0711 under the per-app users (apps pass through to their own
	// directories; nobody may list it), 0700 otherwise.
	if m := fileMode(t, d.dataDir); m&0o066 != 0 || (os.Getuid() != 0 && m != 0o700) {
		t.Errorf("the data directory has mode %o: others may read or write it", m)
	}
	if n := strings.Count(d.log.String(), d.token); n != 1 {
		t.Errorf("the admin token appears %d times in the daemon's output, want once", n)
	}
	d.mustCLI("apps", "create", "guarded") // the local CLI found admin.token
	for _, c := range []struct {
		name, auth, method, path string
		want                     int
	}{
		{"liveness needs nothing", "", "GET", "/healthz", 200},
		{"no token", "", "GET", "/api/v1/apps", 401},
		{"no token, metrics", "", "GET", "/metrics", 401},
		{"no token, deploy", "", "POST", "/api/v1/apps/guarded/deployments", 401},
		{"wrong token", "Bearer slw_admin_AAAA", "GET", "/api/v1/apps", 401},
		{"not a token", "Bearer hunter2", "GET", "/api/v1/apps", 401},
		{"admin token", "Bearer " + d.token, "GET", "/api/v1/apps", 200},
		{"the scheme in lower case", "bearer " + d.token, "GET", "/api/v1/apps", 200},
		{"admin token as basic auth", basic("anyone", d.token), "GET", "/api/v1/apps/guarded", 200},
		{"admin token, metrics", "Bearer " + d.token, "GET", "/metrics", 200},
	} {
		if got, body := d.call(c.auth, c.method, c.path, nil); got != c.want {
			t.Errorf("%s: %s %s answered %d, want %d: %s", c.name, c.method, c.path, got, c.want, body)
		}
	}
	if _, body := d.call("", "GET", "/api/v1/apps", nil); !strings.Contains(body, "slipway login") {
		t.Errorf("a 401 does not say what to do: %s", body)
	}

	// Rotated, the old token stops working at once; the new one is in
	// admin.token, where the local CLI finds it.
	old := d.token
	out := d.mustCLI("admin", "rotate-token")
	b, _ := os.ReadFile(filepath.Join(d.dataDir, "admin.token"))
	d.token = strings.TrimSpace(string(b))
	if d.token == old || !strings.Contains(out, d.token) {
		t.Fatalf("after rotate-token, admin.token holds %q; the command said:\n%s", d.token, out)
	}
	if got, _ := d.call("Bearer "+old, "GET", "/api/v1/apps", nil); got != 401 {
		t.Errorf("the old admin token after rotation: %d, want 401", got)
	}
	if m := fileMode(t, filepath.Join(d.dataDir, "admin.token")); m != 0o600 {
		t.Errorf("the rotated admin.token has mode %o, want 600", m)
	}
	d.mustCLI("apps", "list")

	// Restarted, the daemon keeps its token and prints none.
	d.stop()
	d.start()
	if strings.Contains(d.log.String(), "slw_") {
		t.Errorf("a restarted daemon printed a token:\n%s", d.log)
	}
	if got, _ := d.call("Bearer "+d.token, "GET", "/api/v1/apps", nil); got != 200 {
		t.Errorf("the admin token after a restart: %d, want 200", got)
	}
}

// TestAdminTokenReset: a lost admin token is replaced from the data
// directory while the daemon is stopped: the old token is refused, the
// new one works and is in admin.token. While the daemon runs the reset is
// refused, naming it, and changes nothing.
func TestAdminTokenReset(t *testing.T) {
	d := startDaemon(t)
	tokenFile := filepath.Join(d.dataDir, "admin.token")
	old := d.token
	out, err := d.cli("admin", "reset-token", "--data-dir", d.dataDir)
	if want := fmt.Sprintf("the daemon is running (pid %d?); stop it first", d.cmd.Process.Pid); err == nil || !strings.Contains(out, want) {
		t.Errorf("reset-token while the daemon runs: %v, want a refusal saying %q:\n%s", err, want, out)
	}
	if b, _ := os.ReadFile(tokenFile); strings.TrimSpace(string(b)) != old {
		t.Errorf("a refused reset changed admin.token")
	}
	if got, _ := d.call("Bearer "+old, "GET", "/api/v1/apps", nil); got != 200 {
		t.Errorf("the admin token after a refused reset: %d, want 200", got)
	}

	d.stop()
	if err := os.Remove(tokenFile); err != nil { // lost
		t.Fatal(err)
	}
	out = d.mustCLI("admin", "reset-token", "--data-dir", d.dataDir)
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if !strings.HasPrefix(token, "slw_admin_") || token == old || strings.Count(out, token) != 1 {
		t.Fatalf("after reset-token, admin.token holds %q; the command said:\n%s", token, out)
	}
	if m := fileMode(t, tokenFile); m != 0o600 {
		t.Errorf("the reset admin.token has mode %o, want 600", m)
	}
	d.start()
	if strings.Contains(d.log.String(), "slw_") {
		t.Errorf("the daemon printed a token after a reset:\n%s", d.log)
	}
	if got, _ := d.call("Bearer "+old, "GET", "/api/v1/apps", nil); got != 401 {
		t.Errorf("the old admin token after a reset: %d, want 401", got)
	}
	if got, body := d.call("Bearer "+token, "GET", "/api/v1/apps", nil); got != 200 {
		t.Errorf("the new admin token: %d, want 200: %s", got, body)
	}
	d.mustCLI("apps", "list") // the local CLI finds it in admin.token

	empty := filepath.Join(t.TempDir(), "nothing")
	if out, err := d.cli("admin", "reset-token", "--data-dir", empty); err == nil || !strings.Contains(out, "holds no slipway store") {
		t.Errorf("reset-token on a directory without a store: %v\n%s", err, out)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Errorf("reset-token made %s", empty)
	}
}

func basic(user, password string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

// TestDeployCredentials: an app's credential deploys that app and reads
// its status and logs, as a bearer token and as basic auth, and can touch
// no other app and no admin route; revoked, it stops working at once.
func TestDeployCredentials(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "alpha")
	d.mustCLI("apps", "create", "beta")
	var cred api.NewCredential
	if err := json.Unmarshal([]byte(d.mustCLI("credentials", "create", "-a", "alpha", "--name", "pipeline", "-o", "json")), &cred); err != nil || !strings.HasPrefix(cred.Token, "slw_") {
		t.Fatalf("credentials create: %+v %v", cred, err)
	}
	asAlpha := []string{"SLIPWAY_TOKEN=" + cred.Token}

	jar := testapp.Jar(t, "app.jar", map[string]string{"version": "1"})
	if out, err := d.cliEnv(asAlpha, "deploy", "-a", "alpha", jar); err != nil {
		t.Fatalf("deploying alpha with its credential: %v\n%s", err, out)
	}
	if out, err := d.cliEnv(asAlpha, "status", "-a", "alpha"); err != nil || !strings.Contains(out, "1 ready") {
		t.Errorf("status of alpha with its credential: %v\n%s", err, out)
	}
	if out, err := d.cliEnv(asAlpha, "logs", "-a", "alpha"); err != nil || !strings.Contains(out, "Started App in") {
		t.Errorf("logs of alpha with its credential: %v\n%s", err, out)
	}
	bearer, basicAuth := "Bearer "+cred.Token, basic("$alpha", cred.Token)
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/apps/alpha/status", 200},
		{"GET", "/api/v1/apps/alpha/deployments", 200},
		{"GET", "/api/v1/apps/alpha/logs?tail=1", 200},
		{"GET", "/api/v1/whoami", 200},
		{"GET", "/api/v1/apps/beta/status", 403},
		{"GET", "/api/v1/apps/beta/logs", 403},
		{"POST", "/api/v1/apps/beta/deployments", 403},
		{"GET", "/api/v1/apps", 403},
		{"POST", "/api/v1/apps", 403},
		{"GET", "/api/v1/apps/alpha", 403},
		{"DELETE", "/api/v1/apps/alpha", 403},
		{"GET", "/api/v1/apps/alpha/settings", 403},
		{"PATCH", "/api/v1/apps/alpha/settings", 403},
		{"POST", "/api/v1/apps/alpha/scale", 403},
		{"POST", "/api/v1/apps/alpha/credentials", 403},
		{"POST", "/api/v1/apps/alpha/access/rules", 403},
		{"GET", "/metrics", 403},
		{"POST", "/api/v1/admin/token", 403},
	} {
		for _, auth := range []string{bearer, basicAuth} {
			if got, body := d.call(auth, c.method, c.path, nil); got != c.want {
				t.Errorf("alpha's credential (%s): %s %s answered %d, want %d: %s", strings.Fields(auth)[0], c.method, c.path, got, c.want, body)
			}
		}
	}
	if out, err := d.cliEnv(asAlpha, "deploy", "-a", "beta", jar); err == nil || !strings.Contains(out, "may not touch app beta") {
		t.Errorf("deploying beta with alpha's credential: %v\n%s", err, out)
	}

	// slipway login keeps the credential; later commands use it.
	if out, err := d.cliEnv(nil, "login", "--url", d.apiURL, "--token", cred.Token); err != nil || !strings.Contains(out, "deploy credential of app alpha") {
		t.Fatalf("slipway login: %v\n%s", err, out)
	}
	cfg := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "slipway", "config.json")
	if m := fileMode(t, cfg); m != 0o600 {
		t.Errorf("the login config has mode %o, want 600", m)
	}
	if out, err := d.cli("apps", "list"); err == nil || !strings.Contains(out, "admin token") {
		t.Errorf("after logging in with alpha's credential, apps list: %v\n%s", err, out)
	}
	if out, err := d.cliEnv([]string{"SLIPWAY_TOKEN=" + d.token}, "apps", "list"); err != nil {
		t.Errorf("SLIPWAY_TOKEN does not override the login: %v\n%s", err, out)
	}
	os.Remove(cfg)

	list := d.mustCLI("credentials", "list", "-a", "alpha")
	if !strings.Contains(list, cred.ID) || !strings.Contains(list, "pipeline") || strings.Contains(list, cred.Token) {
		t.Errorf("credentials list:\n%s", list)
	}
	d.mustCLI("credentials", "revoke", "-a", "alpha", cred.ID)
	if got, _ := d.call(bearer, "GET", "/api/v1/apps/alpha/status", nil); got != 401 {
		t.Errorf("a revoked credential: %d, want 401 at once", got)
	}
}

// TestAccessRestrictions: rules for the app's traffic and for its deploy
// endpoints apply at once, first match wins, IPv4 and IPv6, and the client
// behind a trusted proxy is found from X-Forwarded-For, which nobody else
// can spoof. The test's own requests come from 127.0.0.1, the trusted
// proxy; the clients it speaks for are in X-Forwarded-For.
func TestAccessRestrictions(t *testing.T) {
	d := startDaemon(t, "--trusted-proxies", "127.0.0.1/32")
	d.mustCLI("apps", "create", "gated")
	jar := testapp.Jar(t, "app.jar", map[string]string{"version": "1"})
	d.mustCLI("deploy", "-a", "gated", jar)

	d.mustCLI("access", "add", "-a", "gated", "--priority", "100", "--allow", "10.0.0.0/8", "--name", "office")
	d.mustCLI("access", "add", "-a", "gated", "--priority", "50", "--deny", "10.9.0.0/16")
	d.mustCLI("access", "add", "-a", "gated", "--priority", "200", "--allow", "2001:db8::/32")
	d.mustCLI("access", "add", "-a", "gated", "--scope", "deploy", "--priority", "100", "--allow", "192.0.2.0/24", "--name", "build agents")
	out := d.mustCLI("access", "list", "-a", "gated")
	for _, want := range []string{"office", "build agents", "10.9.0.0/16", "2001:db8::/32", "deny"} {
		if !strings.Contains(out, want) {
			t.Errorf("access list lacks %q:\n%s", want, out)
		}
	}
	for _, c := range []struct {
		name, xff string
		app       int // through the router
		deploy    int // the deploy endpoint's list of deployments
	}{
		{"the proxy itself", "", 403, 403},
		{"v4 office", "10.1.2.3", 200, 403},
		{"v4 denied first", "10.9.0.1", 403, 403},
		{"v4 elsewhere", "198.51.100.1", 403, 403},
		{"v6 allowed", "2001:db8::1", 200, 403},
		{"v6 elsewhere", "2001:dead::1", 403, 403},
		{"build agent", "192.0.2.7", 403, 200},
		{"spoofed office on the left", "10.1.2.3, 198.51.100.1", 403, 403},
		{"spoofed agent on the left", "192.0.2.7, 198.51.100.1", 403, 403},
	} {
		req, _ := http.NewRequest("GET", d.httpURL+"/", nil)
		req.Host = "gated.localhost"
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := statusOf(t, req); got != c.app {
			t.Errorf("%s: the app answered %d, want %d", c.name, got, c.app)
		}
		req = d.request("GET", "/api/v1/apps/gated/deployments", nil)
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := statusOf(t, req); got != c.deploy {
			t.Errorf("%s: the deploy endpoint answered %d, want %d", c.name, got, c.deploy)
		}
	}
	if out, err := d.cli("deploy", "-a", "gated", jar); err == nil || !strings.Contains(out, "may not reach the deploy endpoints") {
		t.Errorf("a deploy from outside the deploy rules: %v\n%s", err, out)
	}
	if _, err := d.cli("status", "-a", "gated"); err != nil {
		t.Errorf("status is not a deploy endpoint, yet was refused: %v", err)
	}

	d.mustCLI("access", "remove", "-a", "gated", "--priority", "100")
	d.mustCLI("access", "remove", "-a", "gated", "--priority", "200")
	req, _ := http.NewRequest("GET", d.httpURL+"/", nil)
	req.Host = "gated.localhost"
	if got := statusOf(t, req); got != 200 {
		t.Errorf("with only a deny rule left, the proxy itself: %d, want 200 at once", got)
	}
	for _, bad := range [][]string{
		{"--priority", "100", "--allow", "10.1.2.3/8"},
		{"--priority", "0", "--allow", "10.0.0.0/8"},
		{"--priority", "100", "--allow", "ten"},
		{"--priority", "100", "--allow", "10.0.0.0/8", "--deny", "10.0.0.0/8"},
		{"--priority", "100", "--allow", "10.0.0.0/8", "--scope", "everything"},
	} {
		if out, err := d.cli(append([]string{"access", "add", "-a", "gated"}, bad...)...); err == nil {
			t.Errorf("access add %v was accepted:\n%s", bad, out)
		}
	}
}

// TestUntrustedPeerCannotSpoof: without --trusted-proxies, X-Forwarded-For
// counts for nothing, at the router and at the deploy endpoints.
func TestUntrustedPeerCannotSpoof(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "gated")
	d.mustCLI("deploy", "-a", "gated", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	d.mustCLI("access", "add", "-a", "gated", "--priority", "100", "--allow", "10.0.0.0/8")
	d.mustCLI("access", "add", "-a", "gated", "--scope", "deploy", "--priority", "100", "--allow", "10.0.0.0/8")
	req, _ := http.NewRequest("GET", d.httpURL+"/", nil)
	req.Host = "gated.localhost"
	req.Header.Set("X-Forwarded-For", "10.1.2.3")
	if got := statusOf(t, req); got != 403 {
		t.Errorf("a spoofed X-Forwarded-For reached the app: %d, want 403", got)
	}
	req = d.request("GET", "/api/v1/apps/gated/deployments", nil)
	req.Header.Set("X-Forwarded-For", "10.1.2.3")
	if got := statusOf(t, req); got != 403 {
		t.Errorf("a spoofed X-Forwarded-For reached the deploy endpoint: %d, want 403", got)
	}
	d.mustCLI("access", "add", "-a", "gated", "--priority", "200", "--allow", "127.0.0.1")
	req, _ = http.NewRequest("GET", d.httpURL+"/", nil)
	req.Host = "gated.localhost"
	if got := statusOf(t, req); got != 200 {
		t.Errorf("once 127.0.0.1 is allowed: %d, want it through to the app", got)
	}
}

func statusOf(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestHostileArchive: a zip whose entries reach outside the release
// directory, link elsewhere, or unpack past the bound is refused with the
// reason, and nothing lands outside the release directory.
func TestHostileArchive(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "--command", "sleep 1000", "boxed")
	dir := t.TempDir()
	for name, entries := range map[string][]zipEntry{
		"slip.zip":    {{"ok.txt", []byte("x"), 0o644}, {"../../../../evil.txt", []byte("x"), 0o644}},
		"abs.zip":     {{"/tmp/evil.txt", []byte("x"), 0o644}},
		"symlink.zip": {{"link", []byte("/etc/passwd"), os.ModeSymlink | 0o777}},
	} {
		out, err := d.cli("deploy", "-a", "boxed", writeZip(t, filepath.Join(dir, name), entries))
		if err == nil || !(strings.Contains(out, "outside the release directory") || strings.Contains(out, "symbolic link")) {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(d.dataDir, "..", "*evil*"))
	deeper, _ := filepath.Glob(filepath.Join(d.dataDir, "*", "*", "*evil*"))
	if len(matches)+len(deeper) > 0 {
		t.Errorf("files appeared outside a release directory: %v %v", matches, deeper)
	}
	if _, err := os.Stat("/tmp/evil.txt"); err == nil {
		t.Errorf("/tmp/evil.txt exists")
	}
	for _, dep := range d.deployments("boxed") {
		if dep.State != "failed" {
			t.Errorf("deployment %d of a hostile archive is %s, want failed", dep.ID, dep.State)
		}
	}
}
