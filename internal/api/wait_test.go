package api

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// The fake app of these tests. They need no JVM: an instance's startup
// command re-runs the test binary with testAppEnv set, and TestMain hands
// over to serveTestApp, which answers 200 on $PORT until SIGTERM.
const testAppEnv = "SLIPWAY_API_TESTAPP"

func TestMain(m *testing.M) {
	if os.Getenv(testAppEnv) != "" {
		os.Exit(serveTestApp())
	}
	os.Exit(m.Run())
}

func serveTestApp() int {
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
		case <-time.After(2 * time.Minute): // a test that died left it behind
		}
		os.Exit(0)
	}()
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	return 1
}

// appCommand is the startup command of the fake app.
func appCommand(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s=1 exec '%s'", testAppEnv, bin)
}

// artifactZip is a zip artifact: the fake app needs nothing from it.
func artifactZip(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, _ := zw.Create("README")
	io.WriteString(f, "the fake app runs from the test binary\n")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// answer is a JSON answer with its status.
type answer struct {
	code int
	body []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
}

// TestWaitForTheOutcome: with wait=1, a change answers once its deployment
// has ended, with a status that says how (200, 422, 409) and the finished
// deployment; a client that accepts NDJSON gets the deployment as it
// happens instead; without wait=1 the answer comes at once (202). An
// admin outside the app's deploy access rules is answered so through the
// route of the change, though the deploy endpoints refuse the address.
func TestWaitForTheOutcome(t *testing.T) {
	a := newTestAPI(t)
	good := appCommand(t)
	create := fmt.Sprintf(`{"name": "pipe", "settings": {"command": %q, "start_time_limit": 20, "drain_timeout": 1, "stop_grace": 1}}`, good)
	if code, b := a.do(http.MethodPost, "/api/v1/apps", a.admin, create); code != http.StatusCreated {
		t.Fatalf("creating the app: %d %s", code, b)
	}
	send := func(method, path, body string) answer {
		t.Helper()
		code, b := a.do(method, path, a.admin, body)
		return answer{code, b}
	}
	wantDeployment := func(t *testing.T, got answer, code int, state string) Deployment {
		t.Helper()
		var d Deployment
		got.decode(t, &d)
		if got.code != code || d.State != state {
			t.Fatalf("got %d, state %q (%s); want %d, %s", got.code, d.State, d.Reason, code, state)
		}
		return d
	}

	wantSettings := func(t *testing.T, got answer, code int, state string) SettingsChange {
		t.Helper()
		var v SettingsChange
		got.decode(t, &v)
		if got.code != code || v.Deployment == nil || v.Deployment.State != state {
			t.Fatalf("got %d %s; want %d and a deployment %s", got.code, got.body, code, state)
		}
		return v
	}
	restore := func(t *testing.T) {
		t.Helper()
		wantSettings(t, send(http.MethodPatch, "/api/v1/apps/pipe/settings?wait=1", fmt.Sprintf(`{"command": %q}`, good)), 200, StateSucceeded)
	}

	t.Run("a deploy that succeeds: 200", func(t *testing.T) {
		d := wantDeployment(t, send(http.MethodPost, "/api/v1/apps/pipe/deployments?filename=app.zip&wait=1", artifactZip(t)), 200, StateSucceeded)
		if d.Finished.IsZero() || len(d.Events) == 0 || d.Events[len(d.Events)-1].Step != StepSucceeded {
			t.Errorf("the answer is not the finished deployment: %+v", d)
		}
	})
	t.Run("a change that fails: 422, saying why", func(t *testing.T) {
		v := wantSettings(t, send(http.MethodPatch, "/api/v1/apps/pipe/settings?wait=1", `{"command": "echo boom; exit 3"}`),
			http.StatusUnprocessableEntity, StateFailed)
		if !v.Changed || !strings.Contains(v.Deployment.Reason, "exit code 3") || !strings.Contains(v.Deployment.Reason, "boom") {
			t.Errorf("the answer does not say why: %+v", v)
		}
		restore(t)
	})
	t.Run("a cancelled change: 409", func(t *testing.T) {
		done := make(chan answer, 1)
		go func() {
			code, b := a.do(http.MethodPatch, "/api/v1/apps/pipe/settings?wait=1", a.admin, `{"command": "exec sleep 60"}`)
			done <- answer{code, b}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if code, _ := a.do(http.MethodPost, "/api/v1/apps/pipe/deployments/current/cancel", a.admin, ""); code == http.StatusAccepted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the change never ran to be cancelled")
			}
			time.Sleep(20 * time.Millisecond)
		}
		wantSettings(t, <-done, http.StatusConflict, StateCancelled)
		restore(t)
	})
	t.Run("without wait: 202 at once", func(t *testing.T) {
		d := wantDeployment(t, send(http.MethodPost, "/api/v1/apps/pipe/restart", ""), http.StatusAccepted, StateRunning)
		ended, err := (&Server{opts: Options{Store: a.st}}).waitEnd(t.Context(), "pipe", d.ID)
		if err != nil || ended.State != store.StateSucceeded {
			t.Fatalf("the restart ended %s (%v), want succeeded", ended.State, err)
		}
	})
	t.Run("as NDJSON: the deployment as it happens", func(t *testing.T) {
		lines := follow(t, a, http.MethodPost, "/api/v1/apps/pipe/restart?wait=1", "")
		first, last := lines[0].Deployment, lines[len(lines)-1].Deployment
		if first == nil || first.State != StateRunning || first.Events != nil {
			t.Errorf("the first line is %+v, want the running deployment without its events", lines[0])
		}
		if last == nil || last.State != StateSucceeded || len(lines) < 4 {
			t.Errorf("the stream ends with %+v after %d lines, want the succeeded deployment after its events", lines[len(lines)-1], len(lines))
		}
		if lines[1].Event == nil || lines[1].Event.Step != StepReceived {
			t.Errorf("the second line is %+v, want the first event", lines[1])
		}
	})
	t.Run("a change that changes nothing: 200, changed false", func(t *testing.T) {
		before := len(deployments(t, a, "pipe"))
		got := send(http.MethodPatch, "/api/v1/apps/pipe/settings?wait=1", `{"unset": ["NOPE"]}`)
		var v SettingsChange
		got.decode(t, &v)
		if got.code != 200 || v.Changed || v.Message != "nothing changed: NOPE is not set" || v.Deployment != nil || v.Settings.Command != good {
			t.Errorf("got %d %s; want 200, changed false, saying why, with the settings", got.code, got.body)
		}
		got = send(http.MethodPost, "/api/v1/apps/pipe/scale?wait=1", `{"instances": 1}`)
		var nc NoChange
		got.decode(t, &nc)
		if got.code != 200 || nc.Changed || nc.Message != "nothing changed: the instance count is 1 already" {
			t.Errorf("scale to the count it has: got %d %s; want 200, changed false", got.code, got.body)
		}
		if after := len(deployments(t, a, "pipe")); after != before {
			t.Errorf("%d deployments before, %d after; want none made", before, after)
		}
	})
	t.Run("an admin outside the deploy rules", func(t *testing.T) {
		a.denyLoopback("pipe")
		wantDeployment(t, send(http.MethodPost, "/api/v1/apps/pipe/scale?wait=1", `{"instances": 2}`), 200, StateSucceeded)
		wantSettings(t, send(http.MethodPatch, "/api/v1/apps/pipe/settings?wait=1", `{"set": {"A": "1"}}`), 200, StateSucceeded)
		lines := follow(t, a, http.MethodPost, "/api/v1/apps/pipe/scale?wait=1", `{"instances": 1}`)
		if last := lines[len(lines)-1].Deployment; last == nil || last.State != StateSucceeded {
			t.Errorf("scale as NDJSON ends with %+v, want succeeded", lines[len(lines)-1])
		}
		if code, b := a.do(http.MethodGet, "/api/v1/apps/pipe/deployments/1/events", a.admin, ""); code != http.StatusForbidden {
			t.Errorf("the deploy endpoints from outside the rules: got %d %s, want 403", code, b)
		}
	})
}

// follow sends a change with wait=1 as a client that accepts NDJSON, and
// returns the lines of the answer.
func follow(t *testing.T, a *testAPI, method, path, body string) []FollowLine {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, a.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.admin)
	req.Header.Set("Accept", "application/x-ndjson, application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ndjson {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("got %d %s %s, want 200 and NDJSON", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var lines []FollowLine
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var l FollowLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) < 2 {
		t.Fatalf("%d lines, want the deployment, its events and its end", len(lines))
	}
	return lines
}

func deployments(t *testing.T, a *testAPI, app string) []store.Deployment {
	t.Helper()
	ds, err := a.st.Deployments(t.Context(), app)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestQueueAndWait: wait=1 queues a change behind a running deployment
// (as it did before it waited for the outcome), unless queue=0; queue=1
// queues without waiting.
func TestQueueAndWait(t *testing.T) {
	tests := []struct {
		query string
		queue bool
	}{
		{"", false},
		{"wait=1", true},
		{"wait=1&queue=0", false},
		{"queue=1", true},
		{"queue=true&wait=0", true},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(http.MethodPost, "/?author=ana&"+tt.query, nil)
		if got := meta(r); got.Wait != tt.queue || got.Author != "ana" {
			t.Errorf("%q: queue %v, want %v", tt.query, got.Wait, tt.queue)
		}
	}
}

// TestHTTPSOnlyWarns: https-only on a daemon that serves no HTTPS, with
// no trusted proxy to end TLS in front of it, makes the app unreachable:
// the answer says so.
func TestHTTPSOnlyWarns(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts func(*Options)
		warn bool
	}{
		{"no HTTPS", func(*Options) {}, true},
		{"an HTTPS listener", func(o *Options) { o.HTTPSListener = true }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAPI(t, tt.opts)
			a.createApp(store.App{Name: "promo", Settings: settings.Settings{}})
			code, b := a.do(http.MethodPatch, "/api/v1/apps/promo/access", a.admin, `{"https_only": true}`)
			var p Policy
			json.Unmarshal(b, &p)
			if code != 200 || strings.Contains(p.Warning, "unreachable") != tt.warn {
				t.Errorf("got %d, warning %q; want one: %v", code, p.Warning, tt.warn)
			}
		})
	}
}
