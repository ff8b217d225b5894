package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testapp"
)

// instanceIDs requests / of app until n different instances have answered,
// or 400 times, and returns the instance ids that answered and the last
// body. Under load, fewest-in-flight balancing may favour one instance for
// a while, hence the generous bound.
func (d *daemon) instanceIDs(app string, n int) (map[string]bool, string) {
	d.t.Helper()
	ids := map[string]bool{}
	var body string
	client := d.httpClient()
	for i := 0; i < 400 && len(ids) < n; i++ {
		code, b, err := d.get(context.Background(), client, app, "/")
		if err != nil || code != 200 {
			d.t.Fatalf("GET / of %s: %d %v", app, code, err)
		}
		body = b
		for _, f := range strings.Fields(b) {
			if id, ok := strings.CutPrefix(f, "instance="); ok {
				ids[id] = true
			}
		}
	}
	return ids, body
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestLifecycleUnderLoad changes settings, the startup command, the scale,
// restarts and rolls back, one after another, under the core test's three
// kinds of load. Not one request may fail, and each change shows in the
// answers.
func TestLifecycleUnderLoad(t *testing.T) {
	t.Parallel() // see parallelTests in helpers_test.go
	d := startDaemon(t)
	d.mustCLI("apps", "create", "life")
	d.mustCLI("deploy", "-a", "life", testapp.Jar(t, "life.jar", map[string]string{"version": "1"}))
	l := startLoad(t, d, "life", loadOptions{Steady: 1, Hammer: 16, Slow: 4, MaxDuration: 4 * time.Minute})

	// A settings change, with the profile in the environment.
	d.mustCLI("config", "set", "-a", "life", "GREETING=bonjour", "SPRING_PROFILES_ACTIVE=y", "-m", "french")
	if body := d.body("life", "/"); !strings.Contains(body, "greeting=bonjour profile=y") {
		t.Errorf("after config set the app answers %q", body)
	}
	// The command's argument beats the environment variable.
	d.mustCLI("config", "set-command", "-a", "life", "exec java $JAVA_OPTS -jar app.jar --server.port=$PORT --spring.profiles.active=x")
	if body := d.body("life", "/"); !strings.Contains(body, "profile=x") {
		t.Errorf("with --spring.profiles.active=x in the command and SPRING_PROFILES_ACTIVE=y the app answers %q", body)
	}
	before, _ := d.instanceIDs("life", 1)

	d.mustCLI("scale", "-a", "life", "3")
	three, _ := d.instanceIDs("life", 3)
	if len(three) != 3 || !containsAll(three, before) {
		t.Errorf("after scale 3: instances %v answered, want 3 including the one before %v", keys(three), keys(before))
	}
	d.mustCLI("scale", "-a", "life", "2")
	two, _ := d.instanceIDs("life", 2)
	if len(two) != 2 || !containsAll(three, two) || len(d.app("life").Instances) != 2 {
		t.Errorf("after scale 2: instances %v answered, want 2 of %v", keys(two), keys(three))
	}
	d.mustCLI("restart", "-a", "life")
	fresh, _ := d.instanceIDs("life", 2)
	if len(fresh) != 2 || containsAny(fresh, two) || len(d.app("life").Instances) != 2 {
		t.Errorf("after restart: instances %v answered, want 2 new ones (old: %v)", keys(fresh), keys(two))
	}
	out := d.mustCLI("rollback", "-a", "life")
	if !strings.Contains(out, "Roll back from v3 to v2, as v4") {
		t.Errorf("rollback output:\n%s", out)
	}
	ids, body := d.instanceIDs("life", 2)
	if !strings.Contains(body, "greeting=bonjour profile=y") || len(ids) != 2 || len(d.app("life").Instances) != 2 {
		t.Errorf("after rollback to v2: %d instances, answer %q; want v2's settings on 2 instances", len(ids), body)
	}
	l.check(t)

	out = d.mustCLI("releases", "-a", "life")
	for _, want := range []string{"v4 (live)", "rollback to v2", "command: exec java", "set GREETING=bonjour", "french", "life.jar"} {
		if !strings.Contains(out, want) {
			t.Errorf("slipway releases lacks %q:\n%s", want, out)
		}
	}
	out = d.mustCLI("config", "list", "-a", "life")
	for _, want := range []string{"GREETING", "bonjour", "instances", "2", "warmup-path", "(default)"} {
		if !strings.Contains(out, want) {
			t.Errorf("slipway config list lacks %q:\n%s", want, out)
		}
	}
}

func containsAll(set, sub map[string]bool) bool {
	for k := range sub {
		if !set[k] {
			return false
		}
	}
	return true
}

func containsAny(set, other map[string]bool) bool {
	for k := range other {
		if set[k] {
			return true
		}
	}
	return false
}

// TestConcurrencyRules: a change while a deployment runs gets 409 naming
// it; with --wait it runs after it.
func TestConcurrencyRules(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "queue")
	d.mustCLI("deploy", "-a", "queue", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	d.mustCLI("deploy", "-a", "queue", testapp.Jar(t, "app.jar", map[string]string{"version": "2", "startDelaySeconds": "4"}), "--no-wait")
	for _, args := range [][]string{
		{"config", "set", "-a", "queue", "GREETING=hola"},
		{"config", "set", "-a", "queue", "GREETING=hola", "--no-restart"},
		{"scale", "-a", "queue", "2"},
		{"restart", "-a", "queue"},
		{"rollback", "-a", "queue"},
	} {
		out, err := d.cli(args...)
		if err == nil || !strings.Contains(out, "deployment 2 of app queue is running") {
			t.Errorf("slipway %s during a deployment: err %v, output:\n%s", strings.Join(args, " "), err, out)
		}
	}
	out := d.mustCLI("config", "set", "-a", "queue", "GREETING=hola", "--wait")
	if !strings.Contains(out, "succeeded") {
		t.Errorf("config set --wait:\n%s", out)
	}
	if body := d.body("queue", "/"); !strings.HasPrefix(body, "version=2 ") || !strings.Contains(body, "greeting=hola") {
		t.Errorf("after the queued change the app answers %q, want v2 with greeting=hola", body)
	}
	deps := d.deployments("queue")
	if len(deps) != 3 || deps[1].State != "succeeded" || deps[2].Kind != "settings" {
		t.Errorf("deployments: %d, want 3 with the settings change after the upload", len(deps))
	}
}

// TestCancelDuringWarmup cancels a deployment while it warms up, by the
// cancel verb and by Ctrl-C on a waiting deploy: the old version keeps
// serving and nothing of the cancelled release keeps running.
func TestCancelDuringWarmup(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "stay")
	d.mustCLI("deploy", "-a", "stay", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	slow := testapp.Jar(t, "app.jar", map[string]string{"version": "2", "startDelaySeconds": "120"})

	d.mustCLI("deploy", "-a", "stay", slow, "--no-wait")
	d.waitForStep("stay", "warming up")
	d.mustCLI("deploy", "cancel", "-a", "stay")
	d.waitForState("stay", "cancelled")
	checkCancelled(t, d)

	cmd, stdin, out := d.startCLI("deploy", "-a", "stay", slow)
	d.waitForStep("stay", "warming up")
	waitFor(t, 10*time.Second, "the CLI to print the warm-up", func() bool { return strings.Contains(out.String(), "warming up") })
	cmd.Process.Signal(interruptSignal)
	waitFor(t, 10*time.Second, "the CLI to ask", func() bool { return strings.Contains(out.String(), "Cancel deployment #3 of stay?") })
	stdin.Write([]byte("y\n"))
	err := cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "deployment #3 cancelled") {
		t.Errorf("slipway deploy after Ctrl-C and yes: err %v, output:\n%s", err, out)
	}
	checkCancelled(t, d)
}

func checkCancelled(t *testing.T, d *daemon) {
	t.Helper()
	deps := d.deployments("stay")
	last := deps[len(deps)-1]
	if last.State != "cancelled" || !strings.Contains(last.Reason, "cancelled") {
		t.Errorf("deployment %d: %s %q, want cancelled", last.ID, last.State, last.Reason)
	}
	if body := d.body("stay", "/"); !strings.HasPrefix(body, "version=1 ") {
		t.Errorf("after the cancel the app answers %q, want v1", body)
	}
	checkNoStrayJava(t, d, "stay", 1)
	if a := d.app("stay"); a.Deploying != 0 || a.CurrentRelease != 1 {
		t.Errorf("after the cancel: deploying %d, release v%d; want none, v1", a.Deploying, a.CurrentRelease)
	}
}
