package e2e

import (
	"archive/zip"
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// sseEvent is one server-sent event of the log stream.
type sseEvent struct {
	name string
	line logs.Line
}

// followSSE follows app's log as server-sent events from now on; events
// arrive on the channel until the test ends.
func (d *daemon) followSSE(app string) <-chan sseEvent {
	d.t.Helper()
	req := d.request(http.MethodGet, "/api/v1/apps/"+app+"/logs?follow=1&tail=0", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		d.t.Fatalf("log stream: status %d, Content-Type %q", resp.StatusCode, ct)
	}
	d.t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sseEvent, 10000)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.line)
			case line == "":
				ch <- ev
				ev = sseEvent{}
			}
		}
	}()
	return ch
}

// TestLogStreamFollowsDeployment: a reader of the live stream sees every
// step of a deployment and the app's own lines, in order, each tagged with
// the instance that wrote it; then heartbeats in silence; and the kept
// files download as a zip.
func TestLogStreamFollowsDeployment(t *testing.T) {
	d := startDaemon(t, "--log-heartbeat", "1s")
	d.mustCLI("apps", "create", "watched")
	d.mustCLI("deploy", "-a", "watched", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	oldID := d.app("watched").Instances[0].ID
	events := d.followSSE("watched")
	d.mustCLI("deploy", "-a", "watched", testapp.Jar(t, "app.jar", map[string]string{"version": "2", "startDelaySeconds": "3"}))
	newID := d.app("watched").Instances[0].ID

	var got []logs.Line
	deadline := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended early; it held:\n%s", formatLines(got))
			}
			if ev.name == "log" {
				got = append(got, ev.line)
				done = strings.Contains(ev.line.Text, "Deployment 2: Deployment succeeded")
			}
		case <-deadline:
			t.Fatalf("no 'succeeded' in the stream within 60s; it held:\n%s", formatLines(got))
		}
	}
	// The platform's lines come in the order of the deployment's steps, and
	// each instance's own lines in the order it wrote them. Between the two
	// there is no order to ask for: an instance's output is read by its own
	// follower, and the app may print "Started" after its first answer has
	// already made it ready.
	wantPlatform := []string{
		"Deployment 2 (deploy): Received",
		"Deployment 2: Starting 1 instance(s) of v2",
		"Started instance " + newID,
		"Deployment 2: Warming up",
		"Deployment 2: Instance " + newID + " is ready",
		"Deployment 2: Switched traffic to 1 instance(s) of v2",
		"Deployment 2: Draining 1 old instance(s)",
		"Stopped instance " + oldID,
		"Deployment 2: Stopped 1 old instance(s)",
		"Deployment 2: Deployment succeeded",
	}
	wantNew := []string{"Starting App version 2 on instance " + newID, "Started App in"}
	wantOld := []string{"Shutting down"}
	inOrder := func(source string, want []string) {
		t.Helper()
		i := 0
		for _, l := range got {
			if i < len(want) && l.Source == source && strings.Contains(l.Text, want[i]) {
				if source == newID && l.Release != 2 {
					t.Errorf("line %q of the new instance is tagged release %d, want 2", l.Text, l.Release)
				}
				i++
			}
		}
		if i < len(want) {
			t.Fatalf("the stream lacks %q from %s (or has it out of order):\n%s", want[i], source, formatLines(got))
		}
	}
	inOrder(logs.SourcePlatform, wantPlatform)
	inOrder(newID, wantNew)
	inOrder(oldID, wantOld)

	waitHeartbeat(t, events)

	zipPath := filepath.Join(t.TempDir(), "logs.zip")
	if out := d.mustCLI("logs", "download", "-a", "watched", zipPath); !strings.Contains(out, "Wrote the logs of watched to "+zipPath) {
		t.Errorf("logs download does not say where it wrote:\n%s", out)
	}
	all := readZip(t, zipPath)
	for _, w := range []string{"Deployment 1 (deploy): Received", "Starting App version 2 on instance " + newID, "Deployment 2: Deployment succeeded"} {
		if !strings.Contains(all, w) {
			t.Errorf("the downloaded zip lacks %q", w)
		}
	}
	before := got[0].Time.Add(-time.Millisecond).Format(time.RFC3339Nano)
	d.mustCLI("logs", "download", "-a", "watched", "--until", before, zipPath)
	if early := readZip(t, zipPath); !strings.Contains(early, "Deployment 1 (deploy): Received") || strings.Contains(early, "Deployment 2") {
		t.Errorf("--until %s: the zip holds:\n%s", before, early)
	}
}

// waitHeartbeat waits for a heartbeat event, skipping lines still in flight.
func waitHeartbeat(t *testing.T, events <-chan sseEvent) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.name == logs.StreamHeartbeat {
				if ev.line.Stream != logs.StreamHeartbeat || ev.line.Time.IsZero() {
					t.Errorf("heartbeat event %+v", ev.line)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no heartbeat within 10s (the daemon was told every 1s of silence)")
		}
	}
}

func formatLines(lines []logs.Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Format() + "\n")
	}
	return b.String()
}

// readZip returns the text of every file in the zip at path.
func readZip(t *testing.T, path string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("the download is not a zip: %v", err)
	}
	defer zr.Close()
	var b strings.Builder
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&b, rc)
		rc.Close()
	}
	return b.String()
}

// TestAppOutputIsDefused: what an app prints reaches the operator's
// terminal with its escape sequences shown, not obeyed: through `slipway
// deploy`, whose failure reason quotes the app's last lines, and through
// `slipway logs`. With -o json the lines are the daemon's JSON, exact.
func TestAppOutputIsDefused(t *testing.T) {
	d := startDaemon(t)
	// A window title, a clipboard write (OSC 52), a cleared screen, a
	// cursor move, a C1 CSI (U+009B) and a byte that is not UTF-8.
	script := `printf 'title \033]0;pwned\007 clip \033]52;c;ZXZpbA==\007 clear \033[2J up \033[5A c1 \302\2332J bad \377 end\n'` + "\nexit 3\n"
	zip := zipFile(t, t.TempDir(), "evil.zip", map[string]string{"run.sh": script})
	d.mustCLI("apps", "create", "evil", "--command", "sh run.sh")

	out, err := d.cli("deploy", "-a", "evil", zip)
	if err == nil || !strings.Contains(out, "exited while warming up") {
		t.Fatalf("deploying an app that exits: %v, want a failure that quotes its output:\n%s", err, out)
	}
	checkEscaped(t, "slipway deploy", out)
	checkEscaped(t, "slipway logs", d.mustCLI("logs", "-a", "evil"))

	out = d.mustCLI("logs", "-a", "evil", "-o", "json")
	found := false
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var line logs.Line
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("slipway logs -o json wrote a line that is not JSON (%v): %q", err, l)
		}
		found = found || strings.Contains(line.Text, "title \x1b]0;pwned\x07 clip \x1b]52;c;ZXZpbA==\x07 clear \x1b[2J up \x1b[5A c1 \u009b2J")
	}
	if !found {
		t.Errorf("slipway logs -o json does not carry the app's line exact:\n%s", out)
	}
}

// checkEscaped fails the test unless out shows the sequences the app of
// TestAppOutputIsDefused printed, escaped, and holds none of them raw.
func checkEscaped(t *testing.T, what, out string) {
	t.Helper()
	for _, c := range []string{"\x1b", "\x07", "\u009b", "\xff"} {
		if strings.Contains(out, c) {
			t.Errorf("%s wrote %q raw:\n%q", what, c, out)
		}
	}
	for _, want := range []string{`title \x1b]0;pwned\x07 clip \x1b]52;c;ZXZpbA==\x07`, `clear \x1b[2J up \x1b[5A c1 \u009b2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("%s does not show %s:\n%s", what, want, out)
		}
	}
}
