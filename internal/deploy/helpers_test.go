package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

const (
	testApp    = "shop"
	baseDomain = "test"
	// deployTimeout bounds the wait for a deployment to end; one takes
	// about a second here.
	deployTimeout = 30 * time.Second
)

// harness is a daemon without its listeners: a real store (embedded etcd),
// artifact store, logs hub, router and manager, wired as daemon.Run wires
// them, with the router served by an httptest server.
type harness struct {
	t      *testing.T
	dir    string
	ctl    string // the fake app's control directory
	store  *store.Store
	hub    *logs.Hub
	router *router.Router
	m      *deploy.Manager
	opts   deploy.Options // what m was made with
	front  *httptest.Server
	client *http.Client
	log    *syncBuffer // the manager's own log, shown when a test fails

	closeOnce sync.Once
}

// newHarness starts the parts, recovers (nothing, on an empty data
// directory) and creates testApp with testSettings changed by edit.
func newHarness(t *testing.T, edit func(*settings.Settings)) *harness {
	t.Helper()
	return newHarnessWith(t, edit, nil)
}

// newHarnessWith is newHarness with the manager's options changed by
// withOpts, if not nil (the store and the other parts are set already).
func newHarnessWith(t *testing.T, edit func(*settings.Settings), withOpts func(*deploy.Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, ctl: filepath.Join(dir, "ctl"), log: &syncBuffer{}}
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	arts, err := artifact.NewStore(artifact.Options{Dir: filepath.Join(dir, "artifacts")})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.hub = logs.NewHub(logs.Options{Dir: filepath.Join(dir, "logs"), Logger: logger})
	h.router = router.New(router.Options{Logger: logger})
	h.opts = deploy.Options{Store: st, Artifacts: arts, Router: h.router, Logs: h.hub,
		DataDir: dir, BaseDomain: baseDomain, Logger: logger}
	if withOpts != nil {
		withOpts(&h.opts)
	}
	h.m = deploy.New(h.opts)
	h.front = httptest.NewServer(h.router)
	h.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
	t.Cleanup(h.cleanup)
	if err := h.m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := testSettings(h.ctl)
	if edit != nil {
		edit(&s)
	}
	if _, err := h.m.CreateApp(context.Background(), testApp, s); err != nil {
		t.Fatal(err)
	}
	return h
}

// testSettings runs the fake app with short timeouts, so that a test runs
// in seconds.
func testSettings(ctl string) settings.Settings {
	bin, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return settings.Settings{
		Command:         fmt.Sprintf("%s=app exec %s", testAppEnv, shellQuote(bin)),
		Env:             map[string]string{ctlEnv: ctl},
		Instances:       1,
		HealthPath:      "/health",
		StartTimeLimit:  20,
		DrainTimeout:    5,
		StopGrace:       2,
		HealthInterval:  1,
		HealthTimeout:   1,
		HealthThreshold: 2,
		HoldTimeout:     5,
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// cleanup stops everything and checks that no process the test caused to
// start is still alive.
func (h *harness) cleanup() {
	h.close()
	h.front.Close()
	h.client.CloseIdleConnections()
	if alive := h.alive(); len(alive) > 0 {
		h.t.Errorf("after Close, %d fake app process(es) still run: %v", len(alive), alive)
		for _, p := range alive {
			p.kill()
		}
	}
	if h.t.Failed() {
		if l := h.log.String(); l != "" {
			h.t.Logf("manager log:\n%s", l)
		}
		h.t.Logf("app log:\n%s", h.appLog())
	}
	h.hub.Close()
	h.store.Close()
}

// close is the daemon's shutdown: Manager.Close(false), once.
func (h *harness) close() { h.closeOnce.Do(func() { h.m.Close(false) }) }

// deploy uploads an artifact made from c and returns the deployment it
// started.
func (h *harness) deploy(c appConf) store.Deployment {
	h.t.Helper()
	d, err := h.m.Deploy(context.Background(), deploy.DeployRequest{App: testApp, Artifact: bytes.NewReader(c.zip()),
		FileName: "app.zip", Meta: deploy.Meta{Author: "test", Message: "version " + c.Version}})
	if err != nil {
		h.t.Fatalf("deploying version %s: %v", c.Version, err)
	}
	return d
}

// deployLive deploys c and waits until the deployment succeeded.
func (h *harness) deployLive(c appConf) store.Deployment {
	h.t.Helper()
	return h.wantState(h.deploy(c).ID, store.StateSucceeded)
}

// wantState waits until deployment id ends, and fails the test unless it
// ended in state.
func (h *harness) wantState(id int, state string) store.Deployment {
	h.t.Helper()
	d := h.waitDone(id)
	if d.State != state {
		h.t.Fatalf("deployment %d ended %s, want %s:\n%s", id, d.State, state, events(d))
	}
	return d
}

// waitDone waits until deployment id ends and has released the app's
// lock, and returns it. The manager records the outcome a moment before it
// releases the lock (see TestChangeRightAfterTheOutcome); waiting for both
// keeps the next change of a test from being refused in that moment.
func (h *harness) waitDone(id int) store.Deployment {
	h.t.Helper()
	d := h.watch(id, "to end", store.Deployment.Done)
	waitFor(h.t, 5*time.Second, fmt.Sprintf("deployment %d to release the lock", id), func() (bool, string) {
		holder, err := h.store.LockHolder(context.Background(), testApp)
		return err == nil && holder != id, fmt.Sprintf("held by %d (err %v)", holder, err)
	})
	return d
}

// waitStep waits until deployment id has begun step.
func (h *harness) waitStep(id int, step string) store.Deployment {
	h.t.Helper()
	return h.watch(id, "to reach step "+step, func(d store.Deployment) bool {
		return slices.ContainsFunc(d.Events, func(e store.Event) bool { return e.Step == step })
	})
}

// watch waits until cond holds for deployment id, for at most
// deployTimeout.
func (h *harness) watch(id int, what string, cond func(store.Deployment) bool) store.Deployment {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deployTimeout)
	defer cancel()
	var last store.Deployment
	err := h.store.WatchDeployment(ctx, testApp, id, func(d store.Deployment) bool {
		last = d
		return !cond(d)
	})
	if err != nil || !cond(last) {
		h.t.Fatalf("waiting for deployment %d %s: %v; it is %s:\n%s", id, what, err, last.State, events(last))
	}
	return last
}

func events(d store.Deployment) string {
	var b strings.Builder
	for _, e := range d.Events {
		fmt.Fprintf(&b, "  %s [%s] %s\n", e.At.Format("15:04:05.000"), e.Step, e.Message)
	}
	return b.String()
}

// hasEvent reports whether one of d's events contains text.
func hasEvent(d store.Deployment, text string) bool {
	return slices.ContainsFunc(d.Events, func(e store.Event) bool { return strings.Contains(e.Message, text) })
}

// get requests path of testApp through the router.
func (h *harness) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.front.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = testApp + "." + baseDomain
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// wantBody fails the test unless path answers 200 with body.
func (h *harness) wantBody(path, body string) {
	h.t.Helper()
	code, got, err := h.get(context.Background(), path)
	if err != nil || code != http.StatusOK || got != body {
		h.t.Fatalf("GET %s: got %d %q (err %v), want 200 %q", path, code, got, err, body)
	}
}

// instances returns testApp's instances as the manager reports them.
func (h *harness) instances() []deploy.InstanceStatus { return h.m.Instances(testApp) }

// ready counts testApp's instances in state ready.
func (h *harness) ready() int {
	n := 0
	for _, i := range h.instances() {
		if i.State == deploy.StateReady {
			n++
		}
	}
	return n
}

// appLog is testApp's log: platform events and instance output.
func (h *harness) appLog() string {
	var b strings.Builder
	for _, l := range h.hub.Tail(testApp, logs.DefaultBacklog) {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", l.Time.Format("15:04:05.000"), l.Source, l.Stream, l.Text)
	}
	return b.String()
}

// logCount counts the lines of testApp's log that contain text.
func (h *harness) logCount(text string) int {
	n := 0
	for _, l := range h.hub.Tail(testApp, logs.DefaultBacklog) {
		if strings.Contains(l.Text, text) {
			n++
		}
	}
	return n
}

// proc is a fake app process, as it recorded itself.
type proc struct {
	PID        int
	Version    string
	Instance   string
	StartTicks uint64
}

func (p proc) String() string {
	return fmt.Sprintf("pid %d (%s, version %s)", p.PID, p.Instance, p.Version)
}

// running reports whether p still runs: its pid is the same process and
// not a zombie.
func (p proc) running() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 || f[0] == "Z" {
		return false
	}
	ticks, _ := strconv.ParseUint(f[19], 10, 64)
	return ticks == p.StartTicks
}

func (p proc) kill() {
	if p.running() {
		syscall.Kill(p.PID, syscall.SIGKILL)
	}
}

// started lists every fake app process that has started for this test.
func (h *harness) started() []proc {
	h.t.Helper()
	dir := filepath.Join(h.ctl, "pids")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var out []proc
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // being written
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			h.t.Fatal(err)
		}
		p := proc{}
		p.PID, _ = strconv.Atoi(e.Name())
		if _, err := fmt.Sscanf(string(b), "%s %s %d", &p.Version, &p.Instance, &p.StartTicks); err != nil {
			h.t.Fatalf("%s: %q: %v", e.Name(), b, err)
		}
		out = append(out, p)
	}
	return out
}

// alive lists the fake app processes that still run.
func (h *harness) alive() []proc {
	h.t.Helper()
	var out []proc
	for _, p := range h.started() {
		if p.running() {
			out = append(out, p)
		}
	}
	return out
}

// startedOf lists the processes started of version v.
func (h *harness) startedOf(v string) []proc {
	h.t.Helper()
	var out []proc
	for _, p := range h.started() {
		if p.Version == v {
			out = append(out, p)
		}
	}
	return out
}

// onlyInstancesRun fails the test unless the processes that run are
// exactly the manager's instances.
func (h *harness) onlyInstancesRun() {
	h.t.Helper()
	if diff := h.runDiff(); diff != "" {
		h.t.Error(diff)
	}
}

// runDiff says how the running processes differ from the instances; ""
// when they match.
func (h *harness) runDiff() string {
	h.t.Helper()
	var want, got []int
	for _, i := range h.instances() {
		want = append(want, i.PID)
	}
	alive := h.alive()
	for _, p := range alive {
		got = append(got, p.PID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if slices.Equal(got, want) {
		return ""
	}
	return fmt.Sprintf("running processes %v, want those of the instances %v (%+v)", alive, want, h.instances())
}

// waitFor polls cond every 50 ms until it holds, or fails the test after
// timeout with what it was waiting for and the state cond saw last.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still waiting for %s: %s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// holds checks that cond stays true for d, polling every 50 ms; it is how
// a test shows that something does not happen.
func holds(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if ok, state := cond(); !ok {
			t.Fatalf("%s no longer holds: %s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
