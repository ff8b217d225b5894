package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// change is one of two changes raced against each other.
type change struct {
	name string
	run  func(h *harness, wait bool) (*store.Deployment, error)
}

var (
	deployV2 = change{"deploy version 2", func(h *harness, wait bool) (*store.Deployment, error) {
		d, err := h.m.Deploy(context.Background(), deploy.DeployRequest{App: testApp, Artifact: bytes.NewReader(appConf{Version: "2"}.zip()),
			FileName: "app.zip", Meta: deploy.Meta{Author: "test", Wait: wait}})
		return &d, err
	}}
	setColour = change{"set COLOUR", func(h *harness, wait bool) (*store.Deployment, error) {
		d, _, err := h.m.ChangeSettings(context.Background(), testApp, settings.Change{Set: map[string]string{"COLOUR": "blue"}}, false,
			deploy.Meta{Author: "test", Wait: wait})
		return d, err
	}}
)

type outcome struct {
	change string
	d      *store.Deployment
	err    error
}

// race starts both changes at the same moment and returns how each ended.
func race(h *harness, wait bool, a, b change) []outcome {
	start := make(chan struct{})
	out := make(chan outcome, 2)
	for _, c := range []change{a, b} {
		go func() {
			<-start
			d, err := c.run(h, wait)
			out <- outcome{c.name, d, err}
		}()
	}
	close(start)
	return []outcome{<-out, <-out}
}

// TestRacingChangesOneGetsLocked: of two changes that arrive together
// without Wait, exactly one runs and the other is refused with a
// *store.LockedError naming it, leaving no deployment record behind.
func TestRacingChangesOneGetsLocked(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	var ran *store.Deployment
	var locked *store.LockedError
	for _, o := range race(h, false, deployV2, setColour) {
		var le *store.LockedError
		switch {
		case o.err == nil:
			if ran != nil {
				t.Fatalf("both changes ran: deployments %d and %d", ran.ID, o.d.ID)
			}
			ran = o.d
			t.Logf("%s ran", o.change)
		case errors.As(o.err, &le):
			locked = le
		default:
			t.Fatalf("%s: %v", o.change, o.err)
		}
	}
	if ran == nil || locked == nil {
		t.Fatalf("got one running (%v) and one locked (%v), want both", ran != nil, locked != nil)
	}
	if got, want := locked.Deployment, ran.ID; got != want {
		t.Errorf("LockedError names deployment %d, want the running one, %d", got, want)
	}
	h.wantState(ran.ID, store.StateSucceeded)
	deps, err := h.store.Deployments(context.Background(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(deps), 2; got != want {
		t.Errorf("%d deployment records, want %d (the first deploy and the change that ran)", got, want)
	}
	h.onlyInstancesRun()
}

// TestRacingChangesWithWaitRunInOrder: with Wait, both changes run, one
// after the other, and the second builds on the first: the app ends up
// with the new version and the new setting.
func TestRacingChangesWithWaitRunInOrder(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	var ds []store.Deployment
	for _, o := range race(h, true, deployV2, setColour) {
		if o.err != nil {
			t.Fatalf("%s: %v", o.change, o.err)
		}
		ds = append(ds, *o.d)
	}
	if ds[0].ID > ds[1].ID {
		ds[0], ds[1] = ds[1], ds[0]
	}
	first := h.wantState(ds[0].ID, store.StateSucceeded)
	second := h.wantState(ds[1].ID, store.StateSucceeded)
	if second.Started.Before(first.Finished) {
		t.Errorf("deployment %d started at %s, before deployment %d finished at %s",
			second.ID, second.Started.Format("15:04:05.000"), first.ID, first.Finished.Format("15:04:05.000"))
	}
	if got, want := second.Release, first.Release+1; got != want {
		t.Errorf("second deployment took v%d live, want v%d", got, want)
	}
	a, err := h.store.App(context.Background(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.CurrentRelease, second.Release; got != want {
		t.Errorf("current release v%d, want v%d", got, want)
	}
	h.wantBody("/", "version=2")
	h.wantBody("/env?k=COLOUR", "blue")
	h.onlyInstancesRun()
}

// TestChangeRightAfterTheOutcome: once the store shows a deployment ended,
// it no longer holds the app's lock, so a pipeline that deploys again the
// moment it sees the outcome is not refused. Each round deploys as soon as
// the watch reports that the deployment before ended (Deploy looks at the
// lock first thing); the window, if there is one, is short, hence the
// rounds.
func TestChangeRightAfterTheOutcome(t *testing.T) {
	const rounds = 16
	h := newHarness(t, nil)
	d := h.deploy(appConf{Version: "1"})
	for round := 2; round <= rounds; round++ {
		ended := h.watch(d.ID, "to end", store.Deployment.Done)
		if ended.State != store.StateSucceeded {
			t.Fatalf("deployment %d ended %s:\n%s", ended.ID, ended.State, events(ended))
		}
		next, err := h.m.Deploy(context.Background(), deploy.DeployRequest{App: testApp,
			Artifact: bytes.NewReader(appConf{Version: fmt.Sprint(round)}.zip()), FileName: "app.zip", Meta: deploy.Meta{Author: "test"}})
		var le *store.LockedError
		if errors.As(err, &le) && le.Deployment == ended.ID {
			t.Fatalf("deploying version %d: deployment %d is recorded %s, yet the deploy is refused: %v", round, ended.ID, ended.State, err)
		}
		if err != nil {
			t.Fatalf("deploying version %d: %v", round, err)
		}
		d = next
	}
	h.wantState(d.ID, store.StateSucceeded)
	h.wantBody("/", fmt.Sprintf("version=%d", rounds))
	h.onlyInstancesRun()
}
