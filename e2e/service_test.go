package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestServiceUnit installs Slipway with scripts/install into a staging
// directory (no user, no systemctl: the tests run in a container that
// boots no systemd) and checks the unit with systemd-analyze verify,
// which loads it as systemd would and checks that its commands exist: so
// it verifies the unit as installed, pointing at the installed binary.
func TestServiceUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is missing: scripts/test install installs it (Debian package systemd)")
	}
	root := t.TempDir()
	cmd := exec.Command("bash", "../scripts/install")
	// The binary the tests built (stamped as scripts/install stamps its
	// own): building another, without the race detector, would take
	// minutes on a cold cache.
	cmd.Env = append(os.Environ(), "NO_SYSTEMCTL=1", "PREFIX="+filepath.Join(root, "usr"), "UNIT_DIR="+filepath.Join(root, "units"), "SLIPWAY_BINARY="+binary)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/install: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(root, "usr", "bin", "slipway"), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "slipway e2e (") {
		t.Errorf("the installed slipway --version: %v, %q; want the stamped version and its commit", err, out)
	}
	unit := filepath.Join(root, "units", "slipway.service")
	out, err = exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=slipway", "StateDirectory=slipway", "Environment=SLIPWAY_DATA_DIR=/var/lib/slipway",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/slipway", "Restart=on-failure", "KillMode=process",
		"ExecReload=/bin/kill -HUP $MAINPID", "Type=notify", "NotifyAccess=main", "ExecStart=" + filepath.Join(root, "usr", "bin", "slipway") + " server"} {
		if !strings.Contains(string(b), "\n"+want+"\n") {
			t.Errorf("the installed unit lacks %q", want)
		}
	}
}

// TestNonRoot runs the daemon as a user other than root (nobody, when the
// tests run as root): it starts, deploys an app, which runs as that user
// confined by Landlock, serves it, and stops it.
func TestNonRoot(t *testing.T) {
	d := &daemon{t: t, dataDir: filepath.Join(passableTempDir(t), "data")}
	uid := os.Geteuid()
	if uid == 0 {
		uid = 65534 // nobody
		d.cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		// nobody needs a binary it may run, and a data directory of its own.
		d.bin = filepath.Join(filepath.Dir(d.dataDir), "slipway")
		install(t, binary, d.bin)
		if err := os.Mkdir(d.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.dataDir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	launchWith(t, d, nil)
	if !strings.Contains(d.log.String(), "isolation: landlock") {
		t.Errorf("a daemon without root should confine its apps with Landlock:\n%s", d.log)
	}
	d.mustCLI("apps", "create", "plain")
	d.mustCLI("deploy", "-a", "plain", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	if body := d.body("plain", "/"); !strings.HasPrefix(body, "version=1 ") {
		t.Errorf("the app answers %q", body)
	}
	inst := d.app("plain").Instances
	if len(inst) != 1 {
		t.Fatalf("instances %+v", inst)
	}
	for _, pid := range []int{d.mainPID(), inst[0].PID} {
		if got := processUID(t, pid); got != uid {
			t.Errorf("process %d runs as uid %d, want %d", pid, got, uid)
		}
	}
	d.stop()
	if alive(inst[0].PID) {
		t.Errorf("the instance outlived the daemon's stop")
	}
}

// processUID is the real uid of process pid.
func processUID(t *testing.T, pid int) int {
	t.Helper()
	fi, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}
