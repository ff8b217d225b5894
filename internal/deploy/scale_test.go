package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// TestScaleWithSickInstance scales an app while one of its instances is
// being replaced: it failed its health checks, or it exited. Once the
// replacement and the scale are done, the app runs exactly the instances
// it was scaled to, all ready, and no other process.
//
// It runs in parallel with the other slow waiter, the drain test: most of
// its time goes into health-check intervals.
func TestScaleWithSickInstance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to int
		// sicken makes the instance unwell, and returns the state in
		// which the manager shows it while it replaces it.
		sicken func(h *harness, inst deploy.InstanceStatus) string
	}{
		{"2 to 3, one failing health checks", 2, 3, failHealth},
		{"3 to 1, one exited", 3, 1, crash},
		{"2 to 1, one failing health checks", 2, 1, failHealth},
		{"1 to 2, the only one exited", 1, 2, crash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(s *settings.Settings) { s.Instances = tt.from })
			h.deployLive(appConf{Version: "1"})
			if got := h.ready(); got != tt.from {
				t.Fatalf("%d ready instances, want %d", got, tt.from)
			}
			sick := h.instances()[0]
			state := tt.sicken(h, sick)
			waitFor(t, 10*time.Second, "instance "+sick.ID+" to be "+state, func() (bool, string) {
				insts := h.instances()
				i := slices.IndexFunc(insts, func(i deploy.InstanceStatus) bool { return i.ID == sick.ID })
				return i >= 0 && insts[i].State == state, fmt.Sprintf("instances %+v", insts)
			})

			d, err := h.m.Scale(context.Background(), testApp, tt.to, deploy.Meta{Author: "test"})
			if err != nil {
				t.Fatalf("Scale: %v", err)
			}
			h.wantState(d.ID, store.StateSucceeded)
			h.settle()
			if got := h.ready(); got != tt.to {
				t.Errorf("got %d ready instances, want %d: %+v", got, tt.to, h.instances())
			}
			if slices.ContainsFunc(h.instances(), func(i deploy.InstanceStatus) bool { return i.ID == sick.ID }) {
				t.Errorf("the sick instance %s is still there", sick.ID)
			}
			h.wantBody("/", "version=1")
		})
	}
}

// failHealth makes inst's health endpoint answer 500 from now on.
func failHealth(h *harness, inst deploy.InstanceStatus) string {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.ctl, inst.ID+".sick"), nil, 0o600); err != nil {
		h.t.Fatal(err)
	}
	return deploy.StateUnhealthy
}

// crash kills inst's process.
func crash(h *harness, inst deploy.InstanceStatus) string {
	h.t.Helper()
	if err := syscall.Kill(inst.PID, syscall.SIGKILL); err != nil {
		h.t.Fatal(err)
	}
	return deploy.StateExited
}

// settle waits until every instance is ready and exactly the instances'
// processes run; then until the set of instances has stayed the same for
// two health intervals, and whatever process started meanwhile (a
// replacement that is no longer wanted) is gone again.
func (h *harness) settle() {
	h.t.Helper()
	var ids []string
	ready := func() (bool, string) {
		ids = nil
		for _, i := range h.instances() {
			if i.State != deploy.StateReady {
				return false, fmt.Sprintf("instance %s is %s: %+v", i.ID, i.State, h.instances())
			}
			ids = append(ids, i.ID)
		}
		return true, ""
	}
	onlyInstances := func() (bool, string) {
		diff := h.runDiff()
		return diff == "", diff
	}
	waitFor(h.t, 20*time.Second, "the instances to be ready", func() (bool, string) {
		if ok, state := ready(); !ok {
			return ok, state
		}
		return onlyInstances()
	})
	settled := slices.Clone(ids)
	holds(h.t, 2*time.Second, "the same ready instances", func() (bool, string) {
		ok, state := ready()
		if ok && !slices.Equal(ids, settled) {
			return false, fmt.Sprintf("instances %v, were %v", ids, settled)
		}
		return ok, state
	})
	waitFor(h.t, 5*time.Second, "only the instances to run", onlyInstances)
}

// TestScaleUpLeavesRunningInstancesTheirFiles: scaling up starts new
// instances of the live release beside the running ones; the running ones
// must still find the files of their release directory, their working
// directory, afterwards.
func TestScaleUpLeavesRunningInstancesTheirFiles(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	first := h.instances()[0]
	h.wantInstanceFile(first, confFile)

	d, err := h.m.Scale(context.Background(), testApp, 2, deploy.Meta{Author: "test"})
	if err != nil {
		t.Fatalf("Scale: %v", err)
	}
	h.wantState(d.ID, store.StateSucceeded)
	if got, want := h.ready(), 2; got != want {
		t.Fatalf("%d ready instances, want %d", got, want)
	}
	for _, i := range h.instances() {
		h.wantInstanceFile(i, confFile)
	}
}

// wantInstanceFile fails the test unless instance i reads the file name of
// its working directory. It asks i directly, not through the router, to
// know which instance answers.
func (h *harness) wantInstanceFile(i deploy.InstanceStatus, name string) {
	h.t.Helper()
	resp, err := h.client.Get(fmt.Sprintf("http://127.0.0.1:%d/file?name=%s", i.Port, name))
	if err != nil {
		h.t.Fatalf("asking instance %s for %s: %v", i.ID, name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Errorf("instance %s (started %s) cannot read %s in its working directory: %d %s",
			i.ID, i.Started.Format("15:04:05.000"), name, resp.StatusCode, strings.TrimSpace(string(b)))
	}
}
