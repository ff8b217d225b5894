package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/runtime"
)

// probeScript plays an app that reaches for what is not its own, and for
// what is. Sourced by the startup command (so $PPID is the daemon), it
// prints one line per attempt, "PROBE NAME: ok" or "PROBE NAME: denied",
// then the app serves.
const probeScript = `
try() { if sh -c "$2" >/dev/null 2>&1; then echo "PROBE $1: ok"; else echo "PROBE $1: denied"; fi; }
try read-admin-token 'cat "$DATA/admin.token"'
try list-data-dir 'ls "$DATA"'
try list-store 'ls "$DATA/etcd"'
try read-artifact 'cat "$VICTIM_ARTIFACT"'
try read-other-storage 'cat "$DATA/apps/victim/storage/secret"'
try read-other-release 'cat "$DATA/apps/victim/releases/v1/wsapp"'
try read-other-logs 'cat "$DATA/logs/victim/app.log"'
try write-own-release 'touch ./intruder'
try write-own-storage 'echo mine > "$SLIPWAY_STORAGE/mine" && cat "$SLIPWAY_STORAGE/mine"'
try write-own-tmp 'echo mine > "$TMPDIR/mine" && cat "$TMPDIR/mine"'
try read-lease-key 'cat "$DATA/lease.key"'
try list-own-lease-dir 'ls "$SLIPWAY_LEASE_DIR"'
try write-own-lease-dir 'touch "$SLIPWAY_LEASE_DIR/runner"'
try signal-daemon "kill -0 $PPID"
echo "PROBE uid: $(id -u)"
`

// TestAppTakesNothingThatIsNotItsOwn: an app that only a deploy
// credential put there tries to read the admin token, the lease key, the
// store, the artifacts, another app's storage, release and logs, and to
// write its own release and lease directory; all of it is denied, under
// each isolation mode, while it can write its storage and temp directory
// and read its lease directory. With isolation none, the control,
// every attempt succeeds (as root).
func TestAppTakesNothingThatIsNotItsOwn(t *testing.T) {
	t.Parallel() // see parallelTests in helpers_test.go
	denied := map[string]string{"read-admin-token": "denied", "list-data-dir": "denied", "list-store": "denied", "read-artifact": "denied",
		"read-other-storage": "denied", "read-other-release": "denied", "read-other-logs": "denied", "write-own-release": "denied",
		"write-own-storage": "ok", "write-own-tmp": "ok", "signal-daemon": "denied",
		// It reads its lease directory, where only the daemon may say it is
		// the single runner; the key that signs lease URLs is the daemon's.
		"read-lease-key": "denied", "list-own-lease-dir": "ok", "write-own-lease-dir": "denied"}
	// The control: with nothing isolated, each attempt succeeds, so a
	// "denied" above is the isolation's doing, not a wrong path.
	allowed := make(map[string]string)
	for k := range denied {
		allowed[k] = "ok"
	}
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string
	}{
		{"user (auto as root)", nil, denied},
		{"landlock", []string{"--isolation=landlock"}, denied},
		{"none", []string{"--isolation=none"}, allowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 && tc.args == nil {
				t.Skip("user isolation needs root")
			}
			d := startDaemon(t, tc.args...)
			zip := wsappZip(t, zipEntry{"probe.sh", []byte(probeScript), 0o644})
			d.mustCLI("apps", "create", "victim", "--command", `echo secret > "$SLIPWAY_STORAGE/secret"; exec ./wsapp`)
			d.mustCLI("deploy", "-a", "victim", zip)
			artifact := filepath.Join(d.dataDir, "artifacts", d.releases("victim")[0].Artifact.Digest)
			d.mustCLI("apps", "create", "attacker", "--command", ". ./probe.sh; exec ./wsapp",
				"--env", "DATA="+d.dataDir, "--env", "VICTIM_ARTIFACT="+artifact)
			d.deployAs("attacker", zip)
			got := d.probeResults("attacker", len(denied)+1)
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("%s: %s, want %s", k, got[k], w)
				}
			}
			if tc.args == nil {
				checkOwnUser(t, d, got["uid"])
			}
			// Before ABI 9, Landlock lets a confined process connect to any
			// unix socket it can name. The store opens none: its embedded
			// etcd listens on nothing, and its folder holds only files.
			if socks := sockets(t, filepath.Join(d.dataDir, "etcd")); len(socks) > 0 {
				t.Errorf("the store has the sockets %v, which Landlock ABI %d does not keep instances from", socks, runtime.LandlockABI())
			}
		})
	}
}

// sockets lists the unix sockets under dir.
func sockets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while the walk went on (etcd's temporary files)
		}
		if err != nil {
			return err
		}
		if e.Type()&fs.ModeSocket != 0 {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deployAs deploys file to app with a deploy credential of that app only.
func (d *daemon) deployAs(app, file string) {
	d.t.Helper()
	var cred struct{ Token string }
	if err := json.Unmarshal([]byte(d.mustCLI("credentials", "create", "-a", app, "-o", "json")), &cred); err != nil {
		d.t.Fatal(err)
	}
	if out, err := d.cliEnv([]string{"SLIPWAY_TOKEN=" + cred.Token}, "deploy", "-a", app, file); err != nil {
		d.t.Fatalf("deploy with a deploy credential: %v\n%s", err, out)
	}
}

// probeResults waits until app has printed n PROBE lines and returns them.
func (d *daemon) probeResults(app string, n int) map[string]string {
	d.t.Helper()
	got := map[string]string{}
	waitFor(d.t, 30*time.Second, fmt.Sprintf("%d PROBE lines in the log of %s", n, app), func() bool {
		out, _ := d.cli("logs", "-a", app, "-n", "1000", "--source", "app")
		for _, line := range strings.Split(out, "\n") {
			if _, probe, ok := strings.Cut(line, "PROBE "); ok {
				k, v, _ := strings.Cut(probe, ": ")
				got[k] = strings.TrimSpace(v)
			}
		}
		return len(got) >= n
	})
	return got
}

// checkOwnUser: the app ran as neither root nor the other app's user, and
// owns its storage.
func checkOwnUser(t *testing.T, d *daemon, uid string) {
	t.Helper()
	owner := func(app string) string {
		fi, err := os.Stat(filepath.Join(d.dataDir, "apps", app, "storage"))
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatUint(uint64(fi.Sys().(*syscall.Stat_t).Uid), 10)
	}
	if uid == "0" || uid == "" || uid == owner("victim") || uid != owner("attacker") {
		t.Errorf("the attacker ran as uid %q; victim's storage is %s's, attacker's %s's", uid, owner("victim"), owner("attacker"))
	}
}

// TestDetachedChildIsStopped: a process that an app started with setsid
// (out of its process group and session) is stopped with the instance,
// when a restart replaces it and when the app is deleted.
func TestDetachedChildIsStopped(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "detacher", "--command", `setsid sleep 1000 & echo $! > "$SLIPWAY_STORAGE/child.pid"; exec ./wsapp`)
	d.mustCLI("deploy", "-a", "detacher", wsappZip(t))
	pidFile := filepath.Join(d.dataDir, "apps", "detacher", "storage", "child.pid")
	first := readPID(t, pidFile)
	d.mustCLI("restart", "-a", "detacher")
	waitFor(t, 10*time.Second, fmt.Sprintf("the first instance's detached child %d to be gone", first), func() bool { return !alive(first) })
	second := readPID(t, pidFile)
	if second == first || !alive(second) {
		t.Fatalf("the restarted instance's child: pid %d, alive %v", second, alive(second))
	}
	d.mustCLI("apps", "delete", "detacher", "--yes")
	waitFor(t, 10*time.Second, fmt.Sprintf("the second instance's detached child %d to be gone", second), func() bool { return !alive(second) })
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, 10*time.Second, "a pid in "+path, func() bool {
		b, _ := os.ReadFile(path)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0 && alive(pid)
	})
	return pid
}

// TestLogQuotaHoldsInstanceOutput: an app that prints 50 MB at once, with
// a log quota of 8 MiB: its log files and its instance's output files
// together stay near the quota, all along, and its last line arrives.
func TestLogQuotaHoldsInstanceOutput(t *testing.T) {
	const quota = 8 << 20
	d := startDaemon(t, "--log-file-size", strconv.Itoa(2<<20), "--log-quota", strconv.Itoa(quota))
	line := strings.Repeat("x", 99)
	// 50 MB in bursts of 500 kB, as fast as a busy app logs, not as fast
	// as the disk takes it.
	d.mustCLI("apps", "create", "chatty", "--command", fmt.Sprintf(`(for i in $(seq 100); do yes %s | head -n 5000; sleep 0.02; done; echo PRINTED-ALL) & exec ./wsapp`, line))
	d.mustCLI("deploy", "-a", "chatty", wsappZip(t))
	dirs := []string{filepath.Join(d.dataDir, "logs", "chatty"), filepath.Join(d.dataDir, "apps", "chatty", "instances")}
	var most int64
	waitFor(t, 60*time.Second, "PRINTED-ALL in the log", func() bool {
		most = max(most, diskUse(t, dirs...))
		out, _ := d.cli("logs", "-a", "chatty", "-n", "20", "--source", "app")
		return strings.Contains(out, "PRINTED-ALL")
	})
	// Unread, each output file holds a quarter of the quota at most, and
	// read, what has not been punched out yet (a MiB or so).
	if limit := int64(quota + quota/2 + 2<<20); most > limit {
		t.Errorf("the app's log and output files took up to %d bytes of disk, want at most %d", most, limit)
	}
	// Once read, the output files hold next to nothing.
	waitFor(t, 10*time.Second, "the output files to shrink", func() bool { return diskUse(t, dirs[1]) < 1<<20 })
	if got := diskUse(t, dirs...); got > quota+(1<<20) {
		t.Errorf("after the app printed 50 MB, its files take %d bytes of disk; the quota is %d", got, quota)
	}
}

// diskUse adds up the disk space the files under dirs take.
func diskUse(t *testing.T, dirs ...string) int64 {
	var n int64
	for _, dir := range dirs {
		filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				n += fi.Sys().(*syscall.Stat_t).Blocks * 512
			}
			return nil
		})
	}
	return n
}
