package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestUpgradeUnderLoad upgrades the daemon twice under saturating
// keep-alive load, a new connection every 10 ms per fresh client, and 2 s
// requests in flight. First to a broken binary: the old process says why
// and serves on. Then to a freshly built one: the new process takes over
// the sockets and adopts the instance, keeping its pid, and the old one
// exits. Through both: no connection refused, no request failed.
func TestUpgradeUnderLoad(t *testing.T) {
	// The daemon runs a copy of the binary of its own, which the test
	// replaces as an operator would.
	binDir := filepath.Join(passableTempDir(t), "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "slipway")
	install(t, binary, bin)
	newBuild := filepath.Join(t.TempDir(), "slipway")
	built := make(chan error, 1)
	go func() { built <- buildSlipway(newBuild, "e2e-upgraded") }() // while the app starts

	d := launchWith(t, &daemon{t: t, dataDir: filepath.Join(passableTempDir(t), "data"), bin: bin}, nil)
	d.mustCLI("apps", "create", "steady")
	d.mustCLI("deploy", "-a", "steady", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	before := d.app("steady").Instances
	if len(before) != 1 {
		t.Fatalf("instances %+v, want one", before)
	}
	oldPID := d.mainPID()
	l := startLoad(t, d, "steady", loadOptions{Hammer: 2, Slow: 2, Fresh: 2, MaxDuration: 90 * time.Second})
	renewals := renewLease(t, strings.TrimSpace(d.body("steady", "/env?name=SLIPWAY_LEASE_URL"))+"/upgrade", 90*time.Second)
	waitFor(t, 10*time.Second, "the load to run", func() bool { return l.answered() > 100 })

	t.Run("broken binary", func(t *testing.T) {
		broken := filepath.Join(t.TempDir(), "slipway")
		if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'this slipway is broken' >&2\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		install(t, broken, bin)
		out, err := d.cli("admin", "upgrade")
		if err == nil || !strings.Contains(out, "exit status 3") || !strings.Contains(out, "serves on") {
			t.Errorf("admin upgrade to a broken binary: %v, want a failure saying why and that the old process serves on:\n%s", err, out)
		}
		var v api.Version
		d.getJSON("/api/v1/version", &v)
		if v.PID != oldPID || v.Upgrade == nil || v.Upgrade.State != api.UpgradeFailed {
			t.Errorf("after the broken upgrade the daemon is %+v, want pid %d with the upgrade failed", v, oldPID)
		}
		if !strings.Contains(d.log.String(), "this slipway is broken") {
			t.Errorf("the daemon's log lacks what the broken binary said")
		}
	})

	if err := <-built; err != nil {
		t.Fatal(err)
	}
	install(t, newBuild, bin)
	start := time.Now()
	out := d.mustCLI("admin", "upgrade")
	took := time.Since(start)
	var v api.Version
	d.getJSON("/api/v1/version", &v)
	if v.PID == oldPID || v.Version != "e2e-upgraded" || !strings.Contains(out, "e2e-upgraded") {
		t.Fatalf("after the upgrade: %+v (admin upgrade said %q), want another pid running e2e-upgraded", v, out)
	}
	d.pid = v.PID
	waitFor(t, 40*time.Second, "the old process to exit", func() bool { return !alive(oldPID) })
	end := time.Now()
	// Load after the old process is gone: the new one serves alone.
	time.Sleep(time.Second)
	pause, at := l.longestPause(start, end)
	l.check(t)
	during := l.answeredBetween(start, end)
	t.Logf("the upgrade took %s (admin upgrade), the old process was gone %s after it began; meanwhile %d quick requests were answered, %d connections refused, and the longest quick request took %s (started %s; the median over the whole load: %s)",
		took.Round(time.Millisecond), end.Sub(start).Round(time.Millisecond), during, l.refusals(), pause.Round(time.Millisecond), at.Format("15:04:05.000"), l.medianQuick().Round(time.Millisecond))
	if during == 0 {
		t.Errorf("no request was answered during the upgrade: the test proves less than it says")
	}
	if n := l.refusals(); n != 0 {
		t.Errorf("%d connections were refused during the upgrade", n)
	}
	if n := l.inFlightAt(start, 1); n == 0 {
		t.Errorf("no 2 s request was in flight when the upgrade began: the test proves less than it says")
	}
	if n, failed := renewals.stop(); n == 0 || failed != "" {
		t.Errorf("renewing a lease every 50 ms through the upgrade: %d renewals, then %s", n, failed)
	} else {
		t.Logf("the instance renewed its lease %d times through the upgrade, each answered 200 with the same fencing token", n)
	}
	after := d.app("steady").Instances
	if len(after) != 1 || after[0].PID != before[0].PID || !after[0].Adopted {
		t.Errorf("instances after the upgrade %+v, want pid %d adopted", after, before[0].PID)
	}
	if body := d.body("steady", "/"); !strings.HasPrefix(body, "version=1 ") {
		t.Errorf("after the upgrade the app answers %q", body)
	}
	// The new process deploys as the old one did.
	d.mustCLI("deploy", "-a", "steady", testapp.Jar(t, "app.jar", map[string]string{"version": "2"}))
	if body := d.body("steady", "/"); !strings.HasPrefix(body, "version=2 ") {
		t.Errorf("a deployment after the upgrade: the app answers %q", body)
	}
}

// install puts the file src at dst as an operator would: written beside
// it, then renamed over it, so that the running binary is never changed
// in place.
func install(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// leaseRenewer renews a lease as an instance's job does, until stopped.
type leaseRenewer struct {
	stopc chan struct{}
	done  chan struct{}
	n     int
	// failed says how the first renewal that failed did: refused, an
	// answer other than 200, or another fencing token (the lease changed
	// hands); "" if none did.
	failed string
}

// renewLease renews the lease at url (an instance's SLIPWAY_LEASE_URL
// and a name) every 50 ms, for max at most.
func renewLease(t *testing.T, url string, max time.Duration) *leaseRenewer {
	t.Helper()
	r := &leaseRenewer{stopc: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	go func() {
		defer close(r.done)
		var token int64
		for deadline := time.Now().Add(max); time.Now().Before(deadline); {
			resp, err := client.Post(url+"?ttl=10s", "", nil)
			if err != nil {
				r.failed = err.Error()
				return
			}
			var l api.Lease
			err = json.NewDecoder(resp.Body).Decode(&l)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil || (token != 0 && l.FencingToken != token) {
				r.failed = fmt.Sprintf("%d %+v %v after %d renewals", resp.StatusCode, l, err, r.n)
				return
			}
			token = l.FencingToken
			r.n++
			select {
			case <-r.stopc:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop ends the renewals and says how many succeeded, and how the first
// that failed did.
func (r *leaseRenewer) stop() (int, string) {
	select {
	case <-r.stopc:
	default:
		close(r.stopc)
	}
	<-r.done
	return r.n, r.failed
}
