package e2e

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestSettingsValidation: each bad setting is refused with a message that
// says what to do, by the CLI and by the API, and nothing changes.
func TestSettingsValidation(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "strict")
	d.mustCLI("deploy", "-a", "strict", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"name starting with a digit", []string{"config", "set", "-a", "strict", "1BAD=x"}, "may not start with a digit"},
		{"name with a dash", []string{"config", "set", "-a", "strict", "BAD-NAME=x"}, "may hold only letters, digits, '_' and '.'"},
		{"reserved name", []string{"config", "set", "-a", "strict", "PORT=1"}, "set by the platform"},
		{"reserved prefix", []string{"config", "set", "-a", "strict", "SLIPWAY_APP=x"}, "set by the platform"},
		{"no equals sign", []string{"config", "set", "-a", "strict", "NOVALUE"}, "is not KEY=VALUE"},
		{"unset with a value", []string{"config", "unset", "-a", "strict", "A=b"}, "unset takes names"},
		{"empty command", []string{"config", "set-command", "-a", "strict", " "}, "the command is empty"},
		{"scale 0", []string{"scale", "-a", "strict", "0"}, "between 1 and 32"},
		{"scale 33", []string{"scale", "-a", "strict", "33"}, "between 1 and 32"},
		{"warmup path", []string{"config", "options", "-a", "strict", "--warmup-path", "health"}, "must start with '/'"},
		{"warmup status", []string{"config", "options", "-a", "strict", "--warmup-status", "2xx"}, "like \"200-399\""},
		{"start time limit", []string{"config", "options", "-a", "strict", "--start-time-limit", "5000"}, "between 1 and 1800 seconds"},
		{"drain timeout", []string{"config", "options", "-a", "strict", "--drain-timeout", "-1"}, "drain timeout must be between"},
		{"stop grace", []string{"config", "options", "-a", "strict", "--stop-grace", "99999"}, "stop grace period must be between"},
		{"no option", []string{"config", "options", "-a", "strict"}, "give at least one option"},
		{"app name", []string{"apps", "create", "Bad_Name"}, "invalid app name"},
		{"rollback to nowhere", []string{"rollback", "-a", "strict", "--to", "v9"}, "has no release v9"},
		{"rollback with nothing before", []string{"rollback", "-a", "strict"}, "no release was live before v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := d.cli(tt.args...)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Errorf("slipway %s: err %v, want a refusal saying %q; output:\n%s", strings.Join(tt.args, " "), err, tt.want, out)
			}
		})
	}
	// The daemon validates too, whatever the client.
	for body, want := range map[string]string{
		`{"set": {"1A": "x"}}`:        "may not start with a digit",
		`{"start_time_limit": 99999}`: "between 1 and 1800",
		`{}`:                          "the change is empty",
		`{"sett": {}}`:                "unknown field",
		`{"warmup_path": "/a\r\nb"}`:  "control character",
		`{"set": {"BIG": "` + strings.Repeat("x", 32<<10+1) + `"}}`: "at most 32768 are allowed",
	} {
		resp, err := d.api(http.MethodPatch, "/api/v1/apps/strict/settings", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(b.String(), want) {
			t.Errorf("PATCH %s: %d %s, want 400 saying %q", body, resp.StatusCode, b.String(), want)
		}
	}
	if n := len(d.releases("strict")); n != 1 {
		t.Errorf("refused changes made releases: %d, want 1", n)
	}
	if n := len(d.deployments("strict")); n != 1 {
		t.Errorf("refused changes made deployments: %d, want 1", n)
	}
}

// TestSecretsNeverShown sets a secret and looks for its value everywhere a
// person or a log could see it. The app itself must still get it.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "s3cr3t-Value-8d1f"
	d := startDaemon(t)
	d.mustCLI("apps", "create", "vault")
	d.mustCLI("deploy", "-a", "vault", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	var seen strings.Builder
	seen.WriteString(d.mustCLI("config", "set", "-a", "vault", "--secret", "DB_PASSWORD="+secret))
	if got := strings.TrimSpace(d.body("vault", "/env?name=DB_PASSWORD")); got != secret {
		t.Fatalf("the app sees DB_PASSWORD=%q, want the secret", got)
	}
	d.mustCLI("config", "set", "-a", "vault", "PLAIN=visible") // a later release carries the secret on
	for _, args := range [][]string{
		{"config", "list", "-a", "vault"}, {"config", "list", "-a", "vault", "-o", "json"},
		{"releases", "-a", "vault"}, {"releases", "-a", "vault", "-o", "json"},
		{"apps", "show", "vault"}, {"apps", "show", "vault", "-o", "json"}, {"apps", "list", "-o", "json"},
		{"deployments", "-a", "vault", "-o", "json"}, {"logs", "-a", "vault", "-n", "1000"},
	} {
		seen.WriteString(d.mustCLI(args...))
	}
	for _, path := range []string{"/api/v1/apps/vault", "/api/v1/apps/vault/settings", "/api/v1/apps/vault/releases",
		"/api/v1/apps/vault/deployments", "/api/v1/apps/vault/logs?tail=1000", "/api/v1/apps"} {
		resp, err := d.api(http.MethodGet, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		seen.WriteString(b.String())
	}
	filepath.Walk(filepath.Join(d.dataDir, "logs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			seen.Write(b)
		}
		return nil
	})
	if strings.Contains(seen.String(), secret) {
		t.Errorf("the secret's value shows in the API, the CLI or the log files")
	}
	for _, want := range []string{"****", "set DB_PASSWORD (secret)", "PLAIN=visible"} {
		if !strings.Contains(seen.String(), want) {
			t.Errorf("what was shown lacks %q", want)
		}
	}
}

// TestPersistentStorage: a file written under SLIPWAY_STORAGE by one
// release is there for the next, under each isolation mode that confines
// the JVM (as root: a user of its own, or Landlock).
func TestPersistentStorage(t *testing.T) {
	for _, isolation := range []string{"auto", "landlock"} {
		t.Run(isolation, func(t *testing.T) {
			d := startDaemon(t, "--isolation", isolation)
			d.mustCLI("apps", "create", "keeper")
			d.mustCLI("deploy", "-a", "keeper", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
			d.body("keeper", "/storage?write=kept-across-releases")
			d.mustCLI("deploy", "-a", "keeper", testapp.Jar(t, "app.jar", map[string]string{"version": "2"}))
			d.mustCLI("scale", "-a", "keeper", "2")
			ids, _ := d.instanceIDs("keeper", 2)
			for range ids {
				if got := d.body("keeper", "/storage"); got != "kept-across-releases" {
					t.Errorf("v2 reads %q from its storage, want what v1 wrote", got)
				}
			}
			if got := d.body("keeper", "/"); !strings.HasPrefix(got, "version=2 ") {
				t.Errorf("app answers %q, want v2", got)
			}
		})
	}
}

// TestRetention: with --keep-releases 2, the artifacts of older releases are
// removed, and rolling back to one of them says why it cannot.
func TestRetention(t *testing.T) {
	d := startDaemon(t, "--keep-releases", "2")
	d.mustCLI("apps", "create", "lean")
	for _, v := range []string{"1", "2", "3", "4"} {
		d.mustCLI("deploy", "-a", "lean", testapp.Jar(t, "app.jar", map[string]string{"version": v}))
	}
	// Retention runs after a deployment has succeeded and the CLI has
	// returned: wait for it.
	var dirs []string
	waitFor(t, 30*time.Second, "retention to keep only v3's and v4's artifacts and release directories", func() bool {
		arts, _ := filepath.Glob(filepath.Join(d.dataDir, "artifacts", "sha256-*"))
		dirs, _ = filepath.Glob(filepath.Join(d.dataDir, "apps", "lean", "releases", "v*"))
		return len(arts) == 2 && len(dirs) == 2
	})
	for _, r := range d.releases("lean") {
		_, err := os.Stat(filepath.Join(d.dataDir, "artifacts", r.Artifact.Digest))
		if kept := r.Number >= 3; kept != (err == nil) {
			t.Errorf("%s: artifact kept = %v, want %v", r.Version(), err == nil, kept)
		}
	}
	for _, dir := range dirs {
		if v := filepath.Base(dir); v != "v3" && v != "v4" {
			t.Errorf("release directory %s kept, want those of v3 and v4", v)
		}
	}
	out, err := d.cli("rollback", "-a", "lean", "--to", "v1")
	if err == nil || !strings.Contains(out, "artifact app.jar is gone") {
		t.Errorf("rollback to a pruned release: err %v, output:\n%s", err, out)
	}
	d.mustCLI("rollback", "-a", "lean")
	if got := d.body("lean", "/"); !strings.HasPrefix(got, "version=3 ") {
		t.Errorf("after rollback the app answers %q, want v3", got)
	}
}
