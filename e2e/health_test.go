package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

func (d *daemon) status(app string) api.Status {
	d.t.Helper()
	var st api.Status
	d.getJSON("/api/v1/apps/"+app+"/status", &st)
	return st
}

// waitReady waits until app has n ready instances and nothing else, none
// of them one of gone.
func (d *daemon) waitReady(app string, n int, gone ...string) api.Status {
	d.t.Helper()
	var st api.Status
	waitFor(d.t, 60*time.Second, fmt.Sprintf("%d ready instances of %s", n, app), func() bool {
		st = d.status(app)
		for _, i := range st.Instances {
			for _, g := range gone {
				if i.ID == g {
					return false
				}
			}
		}
		return st.Ready == n && len(st.Instances) == n
	})
	return st
}

// TestKillOneOfTwo: two instances under saturating load, kill -9 one: no
// request fails, and a new instance takes its place.
func TestKillOneOfTwo(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "pair")
	d.mustCLI("scale", "-a", "pair", "2")
	d.mustCLI("deploy", "-a", "pair", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	before := d.waitReady("pair", 2)
	l := startLoad(t, d, "pair", loadOptions{Hammer: 16, Steady: 1, MaxDuration: 2 * time.Minute})
	time.Sleep(time.Second) // load on both before the kill
	victim := before.Instances[0]
	syscall.Kill(victim.PID, syscall.SIGKILL)
	after := d.waitReady("pair", 2, victim.ID)
	time.Sleep(time.Second) // load on the replacement too
	l.check(t)
	for _, i := range after.Instances {
		if i.ID == victim.ID {
			t.Errorf("the killed instance %s is still listed", victim.ID)
		}
	}
	if out := d.mustCLI("logs", "-a", "pair", "-n", "1000"); !strings.Contains(out, "exited unexpectedly (killed by signal 9") || !strings.Contains(out, "replaces "+victim.ID) {
		t.Errorf("the log does not tell the crash and the replacement:\n%s", out)
	}
}

// TestKillTheOnlyInstance: with one instance, kill -9 it under a steady
// client: requests wait for the replacement and none fails.
func TestKillTheOnlyInstance(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "solo")
	d.mustCLI("deploy", "-a", "solo", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	before := d.waitReady("solo", 1)
	l := startLoad(t, d, "solo", loadOptions{Steady: 1, MaxDuration: time.Minute})
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(before.Instances[0].PID, syscall.SIGKILL)
	after := d.waitReady("solo", 1, before.Instances[0].ID)
	time.Sleep(time.Second)
	l.check(t)
	if after.Instances[0].ID == before.Instances[0].ID || after.Instances[0].Restarts != 1 {
		t.Errorf("after the kill: %+v, want a new instance with 1 restart", after.Instances[0])
	}
}

// TestUnhealthyInstanceIsReplaced: an instance that fails its health checks
// leaves rotation and is replaced, with no failed request.
func TestUnhealthyInstanceIsReplaced(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "sickbay")
	d.mustCLI("scale", "-a", "sickbay", "2")
	d.mustCLI("config", "options", "-a", "sickbay", "--health-path", "/health", "--health-interval", "1", "--health-threshold", "2")
	d.mustCLI("deploy", "-a", "sickbay", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	before := d.waitReady("sickbay", 2)
	l := startLoad(t, d, "sickbay", loadOptions{Hammer: 8, Steady: 1, MaxDuration: 2 * time.Minute})
	d.body("sickbay", "/sicken") // one of the two, whichever the router picks
	var after api.Status
	waitFor(t, 60*time.Second, "the sick instance to be replaced", func() bool {
		after = d.status("sickbay")
		replaced := 0
		for _, i := range after.Instances {
			if i.ID != before.Instances[0].ID && i.ID != before.Instances[1].ID && i.State == "ready" {
				replaced++
			}
		}
		return replaced == 1 && after.Ready == 2 && len(after.Instances) == 2
	})
	l.check(t)
	if out := d.mustCLI("logs", "-a", "sickbay", "-n", "1000"); !strings.Contains(out, "is unhealthy (status 500); out of rotation") {
		t.Errorf("the log does not say the instance was unhealthy:\n%s", out)
	}
}

// TestCrashLoop: an app that dies soon after every start is reported as
// crash-looping, and its restarts back off.
func TestCrashLoop(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "loopy")
	d.mustCLI("deploy", "-a", "loopy", testapp.Jar(t, "app.jar", map[string]string{"version": "1", "crashAfterSeconds": "1"}))
	var st api.Status
	waitFor(t, 90*time.Second, "loopy to be reported crash-looping", func() bool {
		st = d.status("loopy")
		return st.CrashLooping
	})
	out := d.mustCLI("status", "-a", "loopy")
	if !strings.Contains(out, "crash-looping") {
		t.Errorf("slipway status does not say crash-looping:\n%s", out)
	}
	logs := d.mustCLI("logs", "-a", "loopy", "-n", "2000")
	if !strings.Contains(logs, "App loopy is crash-looping: restart 4 of instance slot 0 in 4s") {
		t.Errorf("the log does not report the crash loop with its backoff:\n%s", logs)
	}
	if !strings.Contains(logs, "java.lang.OutOfMemoryError") {
		t.Errorf("the log lacks the app's dying words")
	}
}

// TestDaemonRestartKeepsInstances: kill -9 slipway server while an app is
// under load, start it again: the instances keep their pids, and the app
// serves as soon as the router listens.
func TestDaemonRestartKeepsInstances(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "steady")
	d.mustCLI("scale", "-a", "steady", "2")
	d.mustCLI("deploy", "-a", "steady", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	before := d.waitReady("steady", 2)

	client := d.httpClient()
	ok := func() bool {
		code, _, err := d.get(context.Background(), client, "steady", "/")
		return err == nil && code == 200
	}
	if !ok() {
		t.Fatal("the app does not answer before the restart")
	}
	killed := time.Now()
	d.kill()
	restarted := make(chan time.Time, 1)
	go func() { d.start(); restarted <- time.Now() }()
	var back time.Time
	for i := 0; i < 3000; i++ { // a request every 10 ms, at most 30 s
		if ok() {
			back = time.Now()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	up := <-restarted
	if back.IsZero() {
		t.Fatal("the app did not answer within 30 s of the daemon's restart")
	}
	t.Logf("new connections were refused for %s after kill -9 (the daemon's start took %s)", back.Sub(killed).Round(time.Millisecond), up.Sub(killed).Round(time.Millisecond))
	after := d.status("steady")
	if len(after.Instances) != 2 {
		t.Fatalf("instances after the restart: %+v", after.Instances)
	}
	pids := map[int]bool{before.Instances[0].PID: true, before.Instances[1].PID: true}
	for _, inst := range after.Instances {
		if !pids[inst.PID] || !inst.Adopted {
			t.Errorf("instance %s: pid %d adopted=%v, want one of the pids before, adopted", inst.ID, inst.PID, inst.Adopted)
		}
	}
	if deps := d.deployments("steady"); len(deps) != 1 {
		t.Errorf("%d deployments after the restart, want none added: the app was not restarted", len(deps))
	}
	out := d.mustCLI("logs", "-a", "steady", "-n", "1000")
	for _, want := range []string{"Adopted instance", "Deployment 1 (deploy): Received", "Started App in"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log after the restart lacks %q (from before it, or about it):\n%s", want, out)
		}
	}
	platform := d.mustCLI("logs", "-a", "steady", "-n", "1000", "--source", "platform")
	app := d.mustCLI("logs", "-a", "steady", "-n", "1000", "--source", "app", "--since", "1h")
	one := d.mustCLI("logs", "-a", "steady", "-n", "1000", "--instance", after.Instances[0].ID)
	if strings.Contains(platform, "Started App in") || !strings.Contains(platform, "Adopted instance") {
		t.Errorf("--source platform shows app output, or lacks platform events:\n%s", platform)
	}
	if strings.Contains(app, "Adopted instance") || !strings.Contains(app, "Started App in") {
		t.Errorf("--source app shows platform events, or lacks app output:\n%s", app)
	}
	if strings.Contains(one, after.Instances[1].ID) || !strings.Contains(one, after.Instances[0].ID) {
		t.Errorf("--instance %s shows another instance's lines:\n%s", after.Instances[0].ID, one)
	}
	if _, err := d.cli("logs", "-a", "steady", "--source", "nope"); err == nil {
		t.Errorf("--source nope was accepted")
	}
}

// TestWebSocketAcrossSwap: an upgraded connection keeps its old instance
// across a swap until the drain timeout, then is closed cleanly.
func TestWebSocketAcrossSwap(t *testing.T) {
	d := startDaemon(t)
	zip := wsappZip(t)
	d.mustCLI("apps", "create", "ws", "--command", "exec ./wsapp", "--env", "VERSION=1", "--drain-timeout", "3")
	d.mustCLI("deploy", "-a", "ws", zip)

	conn, r := openUpgrade(t, d, "ws")
	defer conn.Close()
	if got := echo(t, conn, r, "hello"); got != "v1: hello" {
		t.Fatalf("echo before the swap: %q", got)
	}
	d.mustCLI("config", "set", "-a", "ws", "VERSION=2", "--no-wait")
	d.waitForStep("ws", "switched")
	switched := time.Now()
	if body := d.body("ws", "/"); !strings.HasPrefix(body, "version=2 ") {
		t.Errorf("after the swap new requests get %q, want v2", body)
	}
	if got := echo(t, conn, r, "still there?"); got != "v1: still there?" {
		t.Errorf("echo after the swap: %q, want the old instance", got)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := r.ReadString('\n')
	closed := time.Since(switched)
	if !errors.Is(err, io.EOF) {
		t.Errorf("the connection ended with %v, want a clean close (EOF)", err)
	}
	if closed < 2*time.Second {
		t.Errorf("the connection closed %s after the swap, before the 3 s drain timeout", closed)
	}
	t.Logf("the upgraded connection was closed %s after the swap", closed.Round(100*time.Millisecond))
	d.waitForState("ws", "succeeded")
}

func openUpgrade(t *testing.T, d *daemon, app string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.httpURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", app)
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("upgrade answered %q, %v", status, err)
	}
	for { // skip the headers
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	return conn, r
}

func echo(t *testing.T, conn net.Conn, r *bufio.Reader, msg string) string {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s\n", msg)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("echo of %q: %v", msg, err)
	}
	return strings.TrimSpace(line)
}

// wsappZip builds testdata/wsapp and zips the binary.
func wsappZip(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "wsapp")
	if out, err := exec.Command("go", "build", "-o", bin, "../testdata/wsapp").CombinedOutput(); err != nil {
		t.Fatalf("building wsapp: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return writeZip(t, filepath.Join(dir, "wsapp.zip"), []zipEntry{{"wsapp", b, 0o755}})
}
