package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestDeploySwapsWithoutFailedRequests: a first deploy goes live and
// answers through the router; a second one takes its place while clients
// keep asking, and not one of their requests fails or sees the old version
// again after the new one.
func TestDeploySwapsWithoutFailedRequests(t *testing.T) {
	h := newHarness(t, func(s *settings.Settings) { s.Instances = 2 })
	h.deployLive(appConf{Version: "1"})
	h.wantBody("/", "version=1")
	if got, want := h.ready(), 2; got != want {
		t.Fatalf("%d ready instances, want %d: %+v", got, want, h.instances())
	}
	h.onlyInstancesRun()

	l := startLoad(h, 4)
	waitFor(t, 10*time.Second, "the load to get going", func() (bool, string) {
		return l.total.Load() >= 20, fmt.Sprintf("%d requests", l.total.Load())
	})
	h.deployLive(appConf{Version: "2"})
	before := l.total.Load()
	waitFor(t, 10*time.Second, "requests after the switch", func() (bool, string) {
		return l.total.Load() >= before+20, fmt.Sprintf("%d requests", l.total.Load())
	})
	l.stop()

	if got := l.failed.Load(); got != 0 {
		t.Errorf("%d of %d requests failed; the first: %s", got, l.total.Load(), strings.Join(l.firstErrors(), "; "))
	}
	if got := l.sawNew.Load(); got == 0 {
		t.Errorf("no request saw version 2 while the load ran (%d requests)", l.total.Load())
	}
	t.Logf("%d requests through the swap", l.total.Load())
	h.wantBody("/", "version=2")
	for _, i := range h.instances() {
		if i.Release != 2 || i.State != deploy.StateReady {
			t.Errorf("instance %s: release %d, %s; want release 2, ready", i.ID, i.Release, i.State)
		}
	}
	if got, want := h.ready(), 2; got != want {
		t.Errorf("%d ready instances, want %d", got, want)
	}
	h.onlyInstancesRun()
}

// load is a few clients asking for / in a loop, each bounded in requests
// and time.
type load struct {
	total, failed, sawNew atomic.Int64
	done                  chan struct{}
	wg                    sync.WaitGroup

	mu   sync.Mutex // guards errs
	errs []string
}

const (
	loadMaxRequests = 5000
	loadMaxTime     = 30 * time.Second
)

func startLoad(h *harness, clients int) *load {
	l := &load{done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), loadMaxTime)
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.client(ctx, h)
		}()
	}
	go func() {
		l.wg.Wait()
		cancel()
	}()
	h.t.Cleanup(l.stop)
	return l
}

// client asks until stopped. Versions only go up: once it has seen
// version 2, version 1 is a failure.
func (l *load) client(ctx context.Context, h *harness) {
	newest := "version=1"
	for range loadMaxRequests {
		select {
		case <-l.done:
			return
		case <-ctx.Done():
			return
		default:
		}
		code, body, err := h.get(ctx, "/")
		if ctx.Err() != nil {
			return // the time bound, not the router
		}
		l.total.Add(1)
		switch {
		case err != nil:
			l.fail(err.Error())
		case code != http.StatusOK:
			l.fail(fmt.Sprintf("status %d: %.100s", code, body))
		case body == "version=2":
			newest = body
			l.sawNew.Add(1)
		case body != newest:
			l.fail(fmt.Sprintf("got %q after %q", body, newest))
		}
	}
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, msg)
	}
}

func (l *load) firstErrors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// stop ends the clients and waits for them; it may be called twice.
func (l *load) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
}

// TestCancelDuringWarmup: a deployment cancelled while its instance warms
// up ends cancelled, its process is gone, and the previous release kept
// serving throughout.
func TestCancelDuringWarmup(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	d := h.deploy(appConf{Version: "2", StartDelay: time.Minute})
	h.waitStep(d.ID, store.StepWarmingUp)
	waitFor(t, 10*time.Second, "the version 2 process to start", func() (bool, string) {
		return len(h.startedOf("2")) == 1, fmt.Sprint(h.started())
	})
	h.wantBody("/", "version=1")

	if err := h.m.Cancel(testApp); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	got := h.wantState(d.ID, store.StateCancelled)
	if got.Reason != deploy.ErrCancelled.Error() {
		t.Errorf("reason %q, want %q", got.Reason, deploy.ErrCancelled)
	}
	for _, p := range h.startedOf("2") {
		if p.running() {
			t.Errorf("%s still runs after the cancelled deployment ended", p)
		}
	}
	h.onlyInstancesRun()
	h.wantBody("/", "version=1")
	insts := h.instances()
	if len(insts) != 1 || insts[0].Release != 1 || insts[0].State != deploy.StateReady {
		t.Errorf("instances %+v, want one ready instance of release 1", insts)
	}
	a, err := h.store.App(context.Background(), testApp)
	if err != nil || a.CurrentRelease != 1 {
		t.Errorf("current release %d (err %v), want 1", a.CurrentRelease, err)
	}
	if err := h.m.Cancel(testApp); !errors.Is(err, deploy.ErrNotRunning) {
		t.Errorf("second Cancel: got %v, want ErrNotRunning", err)
	}
}

// TestExitDuringWarmup: a new instance that exits before it is ready fails
// the deployment, which quotes its last output; the previous release keeps
// serving.
func TestExitDuringWarmup(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	d := h.deploy(appConf{Version: "2", StartDelay: time.Minute, ExitAfter: 300 * time.Millisecond})
	got := h.wantState(d.ID, store.StateFailed)
	for _, want := range []string{"exited while warming up", "exit code 3", "exiting as testapp.conf says"} {
		if !strings.Contains(got.Reason, want) {
			t.Errorf("reason %q lacks %q", got.Reason, want)
		}
	}
	h.wantBody("/", "version=1")
	h.onlyInstancesRun()
}

// TestInstanceCrashDuringDrain: the old instance dies while the deployment
// drains it. The deployment still succeeds without waiting out the drain
// timeout, nothing of the old release keeps running, and the retired
// instance is not replaced, as a crash of a serving one would be.
func TestInstanceCrashDuringDrain(t *testing.T) {
	h := newHarness(t, func(s *settings.Settings) { s.DrainTimeout = 20 })
	h.deployLive(appConf{Version: "1"})
	old := h.instances()[0]

	// A slow request keeps the old instance draining; only version 1 is
	// slow, so its retry on version 2 answers at once.
	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		code, body, err := h.get(context.Background(), "/slow?d=15s&only=1")
		slow <- result{code, body, err}
	}()
	b := h.router.Backends(testApp)[0]
	waitFor(t, 5*time.Second, "the slow request to be in flight", func() (bool, string) {
		return b.InFlight() == 1, fmt.Sprintf("%d in flight", b.InFlight())
	})

	d := h.deploy(appConf{Version: "2"})
	h.waitStep(d.ID, store.StepDraining)
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the draining instance: %v", err)
	}
	got := h.wantState(d.ID, store.StateSucceeded)
	if hasEvent(got, "Drain timeout passed") {
		t.Errorf("the deployment waited out the drain timeout for a dead instance:\n%s", events(got))
	}
	select {
	case r := <-slow:
		if r.err != nil || r.code != http.StatusOK || r.body != "version=2" {
			t.Errorf("the request on the crashed instance: got %d %q (err %v), want 200 \"version=2\" (retried)", r.code, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the request on the crashed instance had no answer 10 s after the crash")
	}

	h.onlyInstancesRun()
	insts := h.instances()
	if len(insts) != 1 || insts[0].Release != 2 {
		t.Fatalf("instances %+v, want one of release 2", insts)
	}
	// A replacement would start at once (no backoff for a first crash);
	// watch for one over a few health intervals.
	holds(t, 2*time.Second, "no replacement for the retired instance", func() (bool, string) {
		if n := len(h.startedOf("1")); n != 1 {
			return false, fmt.Sprintf("%d processes of version 1 started", n)
		}
		if n := h.logCount("exited unexpectedly"); n != 0 {
			return false, "the log says an instance exited unexpectedly:\n" + h.appLog()
		}
		if diff := h.runDiff(); diff != "" {
			return false, diff
		}
		return len(h.instances()) == 1, fmt.Sprintf("instances %+v", h.instances())
	})
}

// TestCloseDuringDeployment: the daemon shutting down cancels a deployment
// that is warming up. It ends cancelled, because of the shutdown, not
// succeeded; the release that was live stays the current one, and Close
// leaves no process behind.
func TestCloseDuringDeployment(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	d := h.deploy(appConf{Version: "2", StartDelay: time.Minute})
	h.waitStep(d.ID, store.StepWarmingUp)
	waitFor(t, 10*time.Second, "the version 2 process to start", func() (bool, string) {
		return len(h.startedOf("2")) == 1, fmt.Sprint(h.started())
	})

	h.close()
	got, err := h.store.Deployment(context.Background(), testApp, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateCancelled || got.Reason != deploy.ErrShuttingDown.Error() {
		t.Errorf("deployment %d: got %s %q, want %s %q:\n%s", d.ID, got.State, got.Reason, store.StateCancelled, deploy.ErrShuttingDown, events(got))
	}
	if alive := h.alive(); len(alive) > 0 {
		t.Errorf("after Close, still running: %v", alive)
	}
	a, err := h.store.App(context.Background(), testApp)
	if err != nil || a.CurrentRelease != 1 {
		t.Errorf("current release %d (err %v), want 1", a.CurrentRelease, err)
	}
}

// TestRestartAndRollback: a restart replaces every process with a fresh
// one of the same release; a rollback takes the release before live again,
// as a new release.
func TestRestartAndRollback(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	h.deployLive(appConf{Version: "2"})
	before := h.instances()

	d, err := h.m.Restart(context.Background(), testApp, deploy.Meta{Author: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.wantState(d.ID, store.StateSucceeded)
	after := h.instances()
	if len(after) != 1 || after[0].PID == before[0].PID || after[0].Release != 2 {
		t.Errorf("after restart: instances %+v, want one new instance of release 2 (was %+v)", after, before)
	}
	h.wantBody("/", "version=2")
	h.onlyInstancesRun()

	d, err = h.m.Rollback(context.Background(), testApp, 0, deploy.Meta{Author: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.wantState(d.ID, store.StateSucceeded)
	h.wantBody("/", "version=1")
	rel, err := h.store.Release(context.Background(), testApp, d.Release)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rel.Number, 3; got != want {
		t.Errorf("rollback release v%d, want v%d", got, want)
	}
	if got, want := rel.RolledBackFrom, 1; got != want {
		t.Errorf("rollback release copies v%d, want v%d", got, want)
	}
	h.onlyInstancesRun()
}
