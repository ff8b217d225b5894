package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestDaemonKilledDuringDeployment kills slipway server with SIGKILL while a
// deployment warms up, then starts it again: the live instance outlived the
// daemon and is adopted with its pid, the interrupted release's instance is
// killed, the deployment is marked failed ("interrupted"), and no lock is
// left.
func TestDaemonKilledDuringDeployment(t *testing.T) {
	d := startDaemon(t)
	v1 := testapp.Jar(t, "app.jar", map[string]string{"version": "1"})
	v2 := testapp.Jar(t, "app.jar", map[string]string{"version": "2", "startDelaySeconds": "60"})
	d.mustCLI("apps", "create", "phoenix")
	d.mustCLI("deploy", "-a", "phoenix", v1)
	live := d.app("phoenix").Instances[0]
	d.mustCLI("deploy", "-a", "phoenix", v2, "--no-wait")
	d.waitForStep("phoenix", "warming up")
	pids := startedPIDs(d.mustCLI("logs", "-a", "phoenix", "--tail", "1000"))
	if len(pids) != 2 || pids[0] != live.PID {
		t.Fatalf("started pids %v, want v1's %d and v2's", pids, live.PID)
	}

	d.kill()
	if !alive(live.PID) || !alive(pids[1]) {
		t.Fatalf("instances died with their daemon; they should outlive it")
	}
	d.start()

	if got := d.app("phoenix").Instances; len(got) != 1 || got[0].PID != live.PID || !got[0].Adopted {
		t.Errorf("instances after the restart %+v, want v1's pid %d, adopted", got, live.PID)
	}
	waitFor(t, 10*time.Second, "v2's instance to be killed", func() bool { return !alive(pids[1]) })
	if body := d.body("phoenix", "/"); !strings.HasPrefix(body, "version=1 ") {
		t.Errorf("after the restart the app answers %q, want v1", body)
	}
	deps := d.deployments("phoenix")
	if len(deps) != 2 || deps[1].State != "failed" || !strings.Contains(deps[1].Reason, "interrupted") {
		t.Errorf("deployments after the restart: %+v; want #2 failed, interrupted, and no other", deps)
	}
	// No lock is left: the same artifact deploys again, now all the way.
	out := d.mustCLI("deploy", "-a", "phoenix", v1, "-m", "again")
	if !strings.Contains(out, "succeeded") {
		t.Errorf("deploy after the restart:\n%s", out)
	}
	checkNoStrayJava(t, d, "phoenix", 1)
	if alive(live.PID) {
		t.Errorf("the adopted instance %d still runs after a new deployment retired it", live.PID)
	}
}

// TestShutdownStopsInstances: SIGTERM stops the daemon cleanly and takes
// every instance with it.
func TestShutdownStopsInstances(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "brief")
	d.mustCLI("deploy", "-a", "brief", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	inst := d.app("brief").Instances
	if len(inst) != 1 || !alive(inst[0].PID) {
		t.Fatalf("instances %+v, want one running", inst)
	}
	d.stop()
	if alive(inst[0].PID) {
		t.Errorf("instance pid %d outlived slipway server", inst[0].PID)
	}
}

// TestKeepInstancesOnSIGTERM: with --keep-instances, a clean stop leaves the
// instances running, and the next daemon adopts them.
func TestKeepInstancesOnSIGTERM(t *testing.T) {
	d := startDaemon(t, "--keep-instances")
	d.mustCLI("apps", "create", "lasting")
	d.mustCLI("deploy", "-a", "lasting", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	inst := d.app("lasting").Instances[0]
	// The instance holds a lease, which it renews at the same URL after
	// the restart: the port is kept, and so is its lease.
	leaseURL := strings.TrimSpace(d.body("lasting", "/env?name=SLIPWAY_LEASE_URL")) + "/lasting?ttl=60s"
	code, before := leaseCall(t, "POST", leaseURL)
	if code != 200 {
		t.Fatalf("taking a lease: %d %s", code, before)
	}
	// The last stop keeps it too: tell the leftover check it is expected.
	os.WriteFile(filepath.Join(d.dataDir, "keep-instances"), []byte("yes"), 0o600)
	d.stop()
	if !alive(inst.PID) {
		t.Fatalf("instance %d did not outlive a daemon stopped with --keep-instances", inst.PID)
	}
	d.start()
	if got := d.app("lasting").Instances; len(got) != 1 || got[0].PID != inst.PID || !got[0].Adopted {
		t.Errorf("after the restart: %+v, want pid %d adopted", got, inst.PID)
	}
	if body := d.body("lasting", "/"); !strings.HasPrefix(body, "version=1 ") {
		t.Errorf("the adopted instance answers %q", body)
	}
	if code, after := leaseCall(t, "POST", leaseURL); code != 200 || tokenOf(after) != tokenOf(before) || tokenOf(after) == "" {
		t.Errorf("renewing the lease after the restart: %d %s; want 200 with the fencing token of %s", code, after, before)
	}
}

// tokenOf is the fencing token in a lease endpoint's answer.
func tokenOf(body string) string {
	_, rest, _ := strings.Cut(body, `"fencing_token": `)
	token, _, _ := strings.Cut(rest, ",")
	return token
}

// TestPromptShutdown: SIGTERM ends followed log streams, server-sent event
// streams and WebSockets at once instead of waiting for them, and cancels a
// deployment that has not switched traffic: after the restart the earlier
// release serves and the deployment says it was cancelled.
func TestPromptShutdown(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "prompt", "--command", "exec ./wsapp", "--env", "VERSION=1")
	d.mustCLI("deploy", "-a", "prompt", wsappZip(t))
	follower, _, _ := d.startCLI("logs", "-a", "prompt", "-f")
	events := openEvents(t, d, "prompt")
	ws := dialWebSocket(t, d, "prompt")
	d.mustCLI("config", "set-command", "-a", "prompt", "sleep 60; exec ./wsapp", "--no-wait")
	d.waitForStep("prompt", "warming up")

	start := time.Now()
	d.stop()
	took := time.Since(start)
	t.Logf("the daemon stopped %s after SIGTERM", took.Round(100*time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("the daemon took %s to stop; streams held it", took)
	}
	if _, err := io.Copy(io.Discard, events); err != nil {
		t.Errorf("the event stream ended with %v, want a clean end", err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("the WebSocket ended with %v, want a close frame 1001", err)
	}
	if err := waitExit(follower, 10*time.Second); err != nil {
		t.Errorf("slipway logs -f: %v", err)
	}

	d.start()
	if body := d.body("prompt", "/"); !strings.HasPrefix(body, "version=1 ") {
		t.Errorf("after the restart the app answers %q, want the earlier release", body)
	}
	for _, dep := range d.deployments("prompt") {
		if dep.Kind == "settings" && (dep.State != "cancelled" && dep.State != "failed" || !strings.Contains(dep.Reason, "shutting down")) {
			t.Errorf("the interrupted change ended %s (%q), want cancelled because the daemon was shutting down", dep.State, dep.Reason)
		}
	}
}

// waitExit waits for a command started with startCLI to exit.
func waitExit(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		cmd.Process.Kill()
		return fmt.Errorf("still running %s after the daemon stopped", timeout)
	}
}
