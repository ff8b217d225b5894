package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestBackupRestore backs up a daemon while it serves under load, then
// restores the backup into a new data directory: the new daemon serves
// the same apps at the same live releases, with the same history and
// admin token, from instances of its own (the first daemon's are neither
// adopted nor killed). A second daemon on a data directory in use is
// refused at once, and a restore onto one that holds state is refused.
func TestBackupRestore(t *testing.T) {
	a := startDaemon(t)
	a.mustCLI("apps", "create", "shop")
	a.mustCLI("deploy", "-a", "shop", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	a.mustCLI("config", "set", "-a", "shop", "GREETING=hello")
	a.mustCLI("deploy", "-a", "shop", testapp.Jar(t, "app.jar", map[string]string{"version": "2"}))
	a.mustCLI("apps", "create", "idle") // never deployed
	l := startLoad(t, a, "shop", loadOptions{Hammer: 1, Steady: 2, MaxDuration: 60 * time.Second})

	file := filepath.Join(t.TempDir(), "slipway.tar")
	out := a.mustCLI("admin", "backup", "-o", file)
	if !strings.Contains(out, "Backup of 2 app(s), 3 release(s) and 2 artifact(s)") {
		t.Errorf("admin backup said:\n%s", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v, %v; want it with mode 0600", fi, err)
	}
	l.check(t)
	aInst := a.app("shop").Instances

	b := launchIn(t, filepath.Join(passableTempDir(t), "data"), nil, "--restore", file)
	if b.token != a.token {
		t.Errorf("the restored admin token differs from the backed-up one")
	}
	b.waitForState("shop", "succeeded")
	if body := b.body("shop", "/"); !strings.HasPrefix(body, "version=2 ") {
		t.Errorf("the restored daemon's shop answers %q, want version 2", body)
	}
	for _, app := range []string{"shop", "idle"} {
		ga, gb := a.app(app), b.app(app)
		if ga.CurrentRelease != gb.CurrentRelease || fmt.Sprint(ga.Settings) != fmt.Sprint(gb.Settings) {
			t.Errorf("%s: restored at v%d with %v, want v%d with %v", app, gb.CurrentRelease, gb.Settings, ga.CurrentRelease, ga.Settings)
		}
		ra, rb := a.releases(app), b.releases(app)
		if fmt.Sprint(ra) != fmt.Sprint(rb) {
			t.Errorf("%s: restored releases\n%v\nwant\n%v", app, rb, ra)
		}
	}
	bInst := b.app("shop").Instances
	if len(bInst) != 1 || len(aInst) != 1 || bInst[0].PID == aInst[0].PID || bInst[0].Adopted {
		t.Errorf("restored instances %+v, first daemon's %+v: want one of its own", bInst, aInst)
	}
	if now := a.app("shop").Instances; len(now) != 1 || now[0].PID != aInst[0].PID || !alive(aInst[0].PID) {
		t.Errorf("the first daemon's instances after the restore: %+v, want pid %d untouched", now, aInst[0].PID)
	}
	// The restored daemon rolls back to a release the backup holds.
	b.mustCLI("rollback", "-a", "shop", "--to", "1")
	if body := b.body("shop", "/"); !strings.HasPrefix(body, "version=1 ") {
		t.Errorf("after a rollback to v1 the restored daemon answers %q", body)
	}

	server := func(dataDir string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "server", "--data-dir", dataDir, "--restore", file,
			"--http-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--api-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := server(b.dataDir)
	if want := fmt.Sprintf("the daemon is running (pid %d?); stop it first, or pick another --data-dir", b.mainPID()); err == nil || !strings.Contains(out, want) {
		t.Errorf("a second daemon on a data directory in use: %v, want it refused at once with %q:\n%s", err, want, out)
	}
	b.stop()
	out, err = server(b.dataDir)
	if err == nil || !strings.Contains(out, "holds a store; --restore fills an empty data directory only") {
		t.Errorf("a restore onto a data directory with state: %v, want it refused:\n%s", err, out)
	}
}
