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
	// Each wanted line must come after the one before it.
	want := []struct{ source, text string }{
		{logs.SourcePlatform, "Deployment 2 (deploy): Received"},
		{logs.SourcePlatform, "Deployment 2: Starting 1 instance(s) of v2"},
		{logs.SourcePlatform, "Started instance " + newID},
		{logs.SourcePlatform, "Deployment 2: Warming up"},
		{newID, "Starting App version 2 on instance " + newID},
		{newID, "Started App in"},
		{logs.SourcePlatform, "Deployment 2: Instance " + newID + " is ready"},
		{logs.SourcePlatform, "Deployment 2: Switched traffic to 1 instance(s) of v2"},
		{logs.SourcePlatform, "Deployment 2: Draining 1 old instance(s)"},
		{oldID, "Shutting down"},
		{logs.SourcePlatform, "Stopped instance " + oldID},
		{logs.SourcePlatform, "Deployment 2: Stopped 1 old instance(s)"},
		{logs.SourcePlatform, "Deployment 2: Deployment succeeded"},
	}
	i := 0
	for _, l := range got {
		if i < len(want) && l.Source == want[i].source && strings.Contains(l.Text, want[i].text) {
			if l.Source == newID && l.Release != 2 {
				t.Errorf("line %q of the new instance is tagged release %d, want 2", l.Text, l.Release)
			}
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("the stream lacks %q from %s (or has it out of order):\n%s", want[i].text, want[i].source, formatLines(got))
	}

	waitHeartbeat(t, events)

	zipPath := filepath.Join(t.TempDir(), "logs.zip")
	d.mustCLI("logs", "download", "-a", "watched", "-o", zipPath)
	all := readZip(t, zipPath)
	for _, w := range []string{"Deployment 1 (deploy): Received", "Starting App version 2 on instance " + newID, "Deployment 2: Deployment succeeded"} {
		if !strings.Contains(all, w) {
			t.Errorf("the downloaded zip lacks %q", w)
		}
	}
	before := got[0].Time.Add(-time.Millisecond).Format(time.RFC3339Nano)
	d.mustCLI("logs", "download", "-a", "watched", "--until", before, "-o", zipPath)
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
