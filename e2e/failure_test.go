package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestFailedDeploymentsKeepTheOldRelease deploys things that cannot go live
// and checks that each says why and leaves v1 serving.
func TestFailedDeploymentsKeepTheOldRelease(t *testing.T) {
	d := startDaemon(t, "--max-upload", "1000000")
	v1 := testapp.Jar(t, "app.jar", map[string]string{"version": "1"})
	d.mustCLI("apps", "create", "keep", "--start-time-limit", "4")
	d.mustCLI("deploy", "-a", "keep", v1)

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		file string
		want []string // in the CLI's output
	}{
		{"jar that exits at once", testapp.Jar(t, "crash.jar", map[string]string{"version": "9", "exitCode": "3"}),
			[]string{"failed", "exited while warming up (exit code 3)", "Fatal: simulated startup failure"}},
		{"jar that never answers", testapp.Jar(t, "mute.jar", map[string]string{"version": "9", "neverListen": "true"}),
			[]string{"failed", "did not become ready", "start time limit of 4s", "connection refused"}},
		{"empty upload", write("empty.jar", nil), []string{"upload is empty"}},
		{"corrupt upload", write("corrupt.jar", bytes.Repeat([]byte("not a zip "), 100)), []string{"not a valid jar, war or zip archive"}},
		{"jar without Main-Class", zipFile(t, dir, "lib.jar", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n"}), []string{"no Main-Class"}},
		{"zip without a command", zipFile(t, dir, "site.zip", map[string]string{"index.html": "hi"}), []string{"no default startup command"}},
		{"upload over the limit", write("huge.jar", make([]byte, 2_000_000)), []string{"larger than the server's limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(d.releases("keep"))
			out, err := d.cli("deploy", "-a", "keep", tt.file)
			if err == nil {
				t.Fatalf("deploy succeeded, want a failure:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if got := d.body("keep", "/"); !strings.HasPrefix(got, "version=1 ") {
				t.Errorf("after the failure the app answers %q, want v1", got)
			}
			a := d.app("keep")
			if a.CurrentRelease != 1 || a.Deploying != 0 || len(a.Instances) != 1 {
				t.Errorf("app after the failure: release %d, deploying %d, %d instances; want v1, none, 1", a.CurrentRelease, a.Deploying, len(a.Instances))
			}
			if rejected := !strings.Contains(tt.want[0], "failed"); rejected && len(d.releases("keep")) != before {
				t.Errorf("a rejected upload made a release")
			}
		})
	}
	checkNoStrayJava(t, d, "keep", 1)
}

// TestSecondDeployIsRefused: a deploy while one runs gets 409 naming it, and
// changes nothing.
func TestSecondDeployIsRefused(t *testing.T) {
	d := startDaemon(t)
	v1 := testapp.Jar(t, "app.jar", map[string]string{"version": "1"})
	slow := testapp.Jar(t, "slow.jar", map[string]string{"version": "2", "startDelaySeconds": "4"})
	d.mustCLI("apps", "create", "busy")
	d.mustCLI("deploy", "-a", "busy", v1)
	d.mustCLI("deploy", "-a", "busy", slow, "--no-wait")
	rels := len(d.releases("busy"))

	f, _ := os.Open(v1)
	defer f.Close()
	resp, err := d.api(http.MethodPost, "/api/v1/apps/busy/deployments?filename=app.jar", f)
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second deploy: status %d, want 409", resp.StatusCode)
	}
	if e.Deployment == nil || e.Deployment.ID != 2 || !strings.Contains(e.Error, "deployment 2 of app busy is running") {
		t.Errorf("409 body does not name deployment 2: %+v", e)
	}
	out, err := d.cli("deploy", "-a", "busy", v1)
	if err == nil || !strings.Contains(out, "deployment 2 of app busy is running") {
		t.Errorf("CLI second deploy: err %v, output:\n%s", err, out)
	}
	if got := len(d.releases("busy")); got != rels {
		t.Errorf("refused deploys made releases: %d, want %d", got, rels)
	}
	waitFor(t, 60*time.Second, "deployment 2 to succeed", func() bool {
		deps := d.deployments("busy")
		return deps[len(deps)-1].State == "succeeded"
	})
	if got := d.body("busy", "/"); !strings.HasPrefix(got, "version=2 ") {
		t.Errorf("app answers %q, want v2", got)
	}
	// The very same artifact again always works, as a new release.
	d.mustCLI("deploy", "-a", "busy", v1)
	if got := len(d.releases("busy")); got != 3 {
		t.Errorf("after redeploying v1: %d releases, want 3", got)
	}
	if got := d.body("busy", "/"); !strings.HasPrefix(got, "version=1 ") {
		t.Errorf("app answers %q, want v1 again", got)
	}
}

// checkNoStrayJava checks that only the app's live instances run.
func checkNoStrayJava(t *testing.T, d *daemon, app string, want int) {
	t.Helper()
	a := d.app(app)
	if len(a.Instances) != want {
		t.Errorf("%d live instances, want %d", len(a.Instances), want)
	}
	out, _ := d.cli("logs", "-a", app, "--tail", "2000")
	for _, pid := range startedPIDs(out) {
		live := false
		for _, i := range a.Instances {
			live = live || i.PID == pid
		}
		if !live && alive(pid) {
			t.Errorf("instance process %d of a failed deployment is still running", pid)
		}
	}
}
