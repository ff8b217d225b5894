package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestPipelineSeesTheOutcome is a pipeline built on curl, and an admin
// outside an app's deploy-scope access rule.
//
// With wait=1 the upload answers when its deployment ends: 200 with the
// succeeded deployment, and, for a jar that crashes on start, 422 (which
// curl --fail fails on) with the failed deployment saying why, while the
// old release keeps serving.
//
// Then a deploy-scope rule allows only 192.0.2.0/24. The admin's scale
// and config set, from 127.0.0.1, are admin routes and are accepted; the
// CLI follows each through its own route, so it exits 0, and each makes
// one deployment (config set one release, scale none): nothing that would
// make a script retry and make extra releases.
func TestPipelineSeesTheOutcome(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "pipe")
	upload := func(jar string) (int, api.Deployment) {
		t.Helper()
		f, err := os.Open(jar)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		resp, err := d.api(http.MethodPost, "/api/v1/apps/pipe/deployments?filename=app.jar&wait=1", f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var dep api.Deployment
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &dep); err != nil {
			t.Fatalf("the answer is no deployment (%v): %d %s", err, resp.StatusCode, b)
		}
		return resp.StatusCode, dep
	}

	code, dep := upload(testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	if code != http.StatusOK || dep.State != api.StateSucceeded || dep.Finished.IsZero() {
		t.Fatalf("a good jar with wait=1: %d, %s (%s); want 200 and the succeeded deployment", code, dep.State, dep.Reason)
	}
	code, dep = upload(testapp.Jar(t, "crash.jar", map[string]string{"version": "2", "exitCode": "3"}))
	if code != http.StatusUnprocessableEntity || dep.State != api.StateFailed ||
		!strings.Contains(dep.Reason, "exit code 3") || !strings.Contains(dep.Reason, "Fatal: simulated startup failure") {
		t.Fatalf("a jar that crashes on start with wait=1: %d, %s (%s); want 422 and the failed deployment saying why", code, dep.State, dep.Reason)
	}
	if got := d.body("pipe", "/"); !strings.HasPrefix(got, "version=1 ") {
		t.Fatalf("after the failed deployment the app answers %q, want v1", got)
	}

	d.mustCLI("access", "add", "-a", "pipe", "--scope", "deploy", "--priority", "100", "--allow", "192.0.2.0/24", "--name", "build agents")
	if out, err := d.cli("deployments", "-a", "pipe"); err == nil || !strings.Contains(out, "may not reach the deploy endpoints") {
		t.Fatalf("the deploy rule does not keep this address out of the deploy endpoints: %v\n%s", err, out)
	}
	last := d.status("pipe").LastDeployment.ID
	releases := len(d.releases("pipe"))
	for _, c := range []struct {
		args     []string
		kind     string
		releases int // made by the change
	}{
		{[]string{"scale", "-a", "pipe", "2"}, "scale", 0},
		{[]string{"config", "set", "-a", "pipe", "GREETING=hola"}, "settings", 1},
	} {
		out, err := d.cli(c.args...)
		if err != nil || !strings.Contains(out, "Deployment succeeded") {
			t.Errorf("slipway %s from outside the deploy rule: %v, want exit 0 after following it:\n%s", strings.Join(c.args, " "), err, out)
		}
		last++
		if got := d.status("pipe").LastDeployment; got.ID != last || got.Kind != c.kind || got.State != api.StateSucceeded {
			t.Errorf("after slipway %s the last deployment is #%d %s %s, want #%d %s succeeded", strings.Join(c.args, " "), got.ID, got.Kind, got.State, last, c.kind)
			last = got.ID
		}
		releases += c.releases
		if got := len(d.releases("pipe")); got != releases {
			t.Errorf("after slipway %s there are %d releases, want %d", strings.Join(c.args, " "), got, releases)
		}
	}
	st := d.waitReady("pipe", 2)
	if got := d.body("pipe", "/"); !strings.HasPrefix(got, "version=1 ") || !strings.Contains(got, "greeting=hola") || st.Wanted != 2 {
		t.Errorf("the app answers %q with %d instances wanted; want v1, greeting=hola, 2", got, st.Wanted)
	}
}

// TestFailedStartKeepsTheAdminToken: a first start that cannot listen
// (the router's port is taken) fails before it makes the admin token, so
// the next, good start still shows it; the failure names the flag to
// change.
func TestFailedStartKeepsTheAdminToken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dataDir := filepath.Join(passableTempDir(t), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "server", "--data-dir", dataDir, "--http-listen", busy.Addr().String(),
		"--api-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") || !strings.Contains(string(out), "--http-listen") {
		t.Fatalf("a start on a taken port: %v, want a failure naming the port and --http-listen:\n%s", err, out)
	}
	if strings.Contains(string(out), "admin token") {
		t.Errorf("the failed start showed the admin token:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "admin.token")); !os.IsNotExist(err) {
		t.Errorf("the failed start left admin.token (%v)", err)
	}

	d := launchIn(t, dataDir, nil)
	d.stop()
	if !strings.Contains(d.log.String(), "The admin token, shown this once") || !strings.Contains(d.log.String(), d.token) {
		t.Errorf("the good start after the failed one did not show the admin token:\n%s", d.log)
	}
}
