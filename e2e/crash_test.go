package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestDaemonKilledDuringDeployment kills slipway server with SIGKILL while a
// deployment warms up, then starts it again: the deployment is marked
// failed ("interrupted"), no lock is left, the current release serves
// again, and nothing of the interrupted release keeps running.
func TestDaemonKilledDuringDeployment(t *testing.T) {
	d := startDaemon(t)
	v1 := testapp.Jar(t, "app.jar", map[string]string{"version": "1"})
	v2 := testapp.Jar(t, "app.jar", map[string]string{"version": "2", "startDelaySeconds": "60"})
	d.mustCLI("apps", "create", "phoenix")
	d.mustCLI("deploy", "-a", "phoenix", v1)
	d.mustCLI("deploy", "-a", "phoenix", v2, "--no-wait")
	waitFor(t, 30*time.Second, "deployment 2 to warm up", func() bool {
		deps := d.deployments("phoenix")
		last := deps[len(deps)-1]
		return last.Events[len(last.Events)-1].Step == "warming up"
	})
	pids := startedPIDs(d.mustCLI("logs", "-a", "phoenix", "--tail", "1000"))
	if len(pids) != 2 {
		t.Fatalf("started pids %v, want v1's and v2's", pids)
	}

	d.kill()
	for _, pid := range pids {
		waitFor(t, 10*time.Second, "the instances to die with their daemon", func() bool { return !alive(pid) })
	}
	d.start()

	deps := d.deployments("phoenix")
	if got := deps[1]; got.State != "failed" || !strings.Contains(got.Reason, "interrupted") {
		t.Errorf("deployment 2 after the restart: %s %q, want failed, interrupted", got.State, got.Reason)
	}
	waitFor(t, 60*time.Second, "v1 to serve again", func() bool {
		code, body, err := d.get(t.Context(), d.httpClient(), "phoenix", "/")
		return err == nil && code == 200 && strings.HasPrefix(body, "version=1 ")
	})
	waitFor(t, 10*time.Second, "the restart deployment to finish", func() bool { return d.app("phoenix").Deploying == 0 })
	deps = d.deployments("phoenix")
	if got := deps[len(deps)-1]; got.State != "succeeded" || got.Release != 1 {
		t.Errorf("restart deployment: %s of v%d, want a success of v1", got.State, got.Release)
	}
	// No lock is left: the same artifact deploys again, now all the way.
	out := d.mustCLI("deploy", "-a", "phoenix", v1, "-m", "again")
	if !strings.Contains(out, "succeeded") {
		t.Errorf("deploy after the restart:\n%s", out)
	}
	checkNoStrayJava(t, d, "phoenix", 1)
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
