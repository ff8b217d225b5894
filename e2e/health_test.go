package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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

// TestWebSocketAcrossSwap: when a deploy retires the instance a
// WebSocket is connected to, the client gets a close frame "going away"
// (1001) at once, not at the drain timeout, and reconnecting reaches the
// new release. A server-sent event stream ends cleanly at the same moment.
// The deployment does not wait out its drain timeout for either.
func TestWebSocketAcrossSwap(t *testing.T) {
	d := startDaemon(t)
	zip := wsappZip(t)
	d.mustCLI("apps", "create", "ws", "--command", "exec ./wsapp", "--env", "VERSION=1", "--drain-timeout", "60")
	d.mustCLI("deploy", "-a", "ws", zip)

	conn := dialWebSocket(t, d, "ws")
	if got := wsEcho(t, conn, "hello"); got != "v1: hello" {
		t.Fatalf("echo before the swap: %q", got)
	}
	events := openEvents(t, d, "ws")
	start := time.Now()
	d.mustCLI("config", "set", "-a", "ws", "VERSION=2", "--no-wait")
	d.waitForStep("ws", "switched")

	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _, err := conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("the old connection ended with %v, want a close frame 1001 (going away)", err)
	}
	if _, err := io.Copy(io.Discard, events); err != nil {
		t.Errorf("the event stream ended with %v, want a clean end", err)
	}
	t.Logf("WebSocket closed and event stream ended %s after the change began", time.Since(start).Round(100*time.Millisecond))
	d.waitForState("ws", "succeeded")
	deps := d.deployments("ws") // oldest first: the settings change is the last
	if last := deps[len(deps)-1]; last.Kind != "settings" || strings.Contains(fmt.Sprint(last.Events), "Drain timeout passed") {
		t.Errorf("the settings change waited out its drain timeout, or is not the last deployment: %s %v", last.Kind, last.Events)
	}
	again := dialWebSocket(t, d, "ws")
	if got := wsEcho(t, again, "hello again"); got != "v2: hello again" {
		t.Errorf("echo after reconnecting: %q, want the new release", got)
	}
}

func dialWebSocket(t *testing.T, d *daemon, app string) *websocket.Conn {
	t.Helper()
	url := "ws://" + strings.TrimPrefix(d.httpURL, "http://") + "/ws"
	conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Host": {app + ".localhost"}})
	if err != nil {
		t.Fatalf("dialing %s: %v (%v)", url, err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func wsEcho(t *testing.T, conn *websocket.Conn, msg string) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("sending %q: %v", msg, err)
	}
	_, got, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("echo of %q: %v", msg, err)
	}
	return string(got)
}

// openEvents opens the app's event stream and reads its first event.
func openEvents(t *testing.T, d *daemon, app string) io.Reader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.httpURL+"/events", nil)
	req.Host = app + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: v1 ") {
		t.Fatalf("first event: %q, %v", line, err)
	}
	return r
}

// wsappZip builds testdata/wsapp and zips the binary, with extra entries.
func wsappZip(t *testing.T, extra ...zipEntry) string {
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
	return writeZip(t, filepath.Join(dir, "wsapp.zip"), append([]zipEntry{{"wsapp", b, 0o755}}, extra...))
}
