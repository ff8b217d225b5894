package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// TestZeroDowntimeDeploy is the user story of the core issue: deploy v1,
// then v2 that takes 30 s to start, while one client requests every 100 ms,
// sixteen keep-alive clients request as fast as they can, and 2 s requests
// are in flight at the switch. Not one request may fail, and no client may
// see v1 after it has seen v2.
func TestZeroDowntimeDeploy(t *testing.T) {
	t.Parallel() // see parallelTests in helpers_test.go
	d := startDaemon(t)
	v1 := testapp.Jar(t, "promo-1.0.jar", map[string]string{"version": "1"})
	v2 := testapp.Jar(t, "promo-2.0.jar", map[string]string{"version": "2", "startDelaySeconds": "30"})

	d.mustCLI("apps", "create", "promo")
	out := d.mustCLI("deploy", "-a", "promo", v1, "-m", "first")
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("deploy v1 output has no success line:\n%s", out)
	}
	if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=1 ") {
		t.Fatalf("after deploying v1 the app answers %q", got)
	}

	l := startLoad(t, d, "promo", loadOptions{Steady: 1, Hammer: 16, Slow: 4, MaxDuration: 3 * time.Minute})
	time.Sleep(3 * time.Second) // load on v1 before the deploy starts
	out = d.mustCLI("deploy", "-a", "promo", v2, "-m", "second")
	t.Logf("slipway deploy v2:\n%s", out)
	for _, step := range []string{"received", "starting", "warming up", "Waiting for response to warmup request", "switched", "draining", "old instances stopped", "succeeded"} {
		if !strings.Contains(out, step) {
			t.Errorf("deploy output lacks %q", step)
		}
	}
	time.Sleep(3 * time.Second) // load on v2 after the deploy
	l.check(t)

	if got := d.body("promo", "/"); !strings.HasPrefix(got, "version=2 ") {
		t.Errorf("after deploying v2 the app answers %q", got)
	}
	deps := d.deployments("promo")
	switched := stepTime(t, deps[len(deps)-1], api.StepSwitched)
	if n := l.inFlightAt(switched, 1); n == 0 {
		t.Errorf("no 2 s request was in flight on v1 at the switch (%s); the test did not test draining", switched.Format("15:04:05.000"))
	} else {
		t.Logf("%d slow requests were in flight on v1 at the switch, and all answered 200", n)
	}
	if l.versions[2] == 0 || l.versions[1] == 0 {
		t.Errorf("answers per version %v: want both versions under load", l.versions)
	}
	checkTables(t, d)
}

// checkTables looks at the people's output of the list verbs.
func checkTables(t *testing.T, d *daemon) {
	out := d.mustCLI("deployments", "-a", "promo")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "#2  deploy  v2") || !strings.Contains(lines[1], "succeeded") {
		t.Errorf("slipway deployments:\n%s", out)
	}
	out = d.mustCLI("apps", "list")
	if !strings.Contains(out, "promo") || !strings.Contains(out, "v2") {
		t.Errorf("slipway apps list:\n%s", out)
	}
	out = d.mustCLI("logs", "-a", "promo", "--tail", "500")
	for _, want := range []string{"Switched traffic to 1 instance(s) of v2", "Started App in", "Initialising"} {
		if !strings.Contains(out, want) {
			t.Errorf("slipway logs lacks %q", want)
		}
	}
}

func stepTime(t *testing.T, d api.Deployment, step string) time.Time {
	t.Helper()
	for _, e := range d.Events {
		if e.Step == step {
			return e.At
		}
	}
	t.Fatalf("deployment %d has no step %q: %+v", d.ID, step, d.Events)
	return time.Time{}
}
