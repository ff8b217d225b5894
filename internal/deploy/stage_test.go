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

// stage stages an artifact made from c and returns the deployment that
// records it.
func (h *harness) stage(c appConf) store.Deployment {
	h.t.Helper()
	d, err := h.m.Stage(context.Background(), deploy.DeployRequest{App: testApp, Artifact: bytes.NewReader(c.zip()),
		FileName: "app.zip", Meta: deploy.Meta{Author: "test", Deployer: "OneDeploy"}})
	if err != nil {
		h.t.Fatalf("staging version %s: %v", c.Version, err)
	}
	return d
}

func (h *harness) staged() *store.ArtifactRef {
	h.t.Helper()
	a, err := h.store.App(context.Background(), testApp)
	if err != nil {
		h.t.Fatal(err)
	}
	return a.Staged
}

// TestStagedArtifactTakenByRestart: a staged artifact (App Service's
// restart=false) is recorded, not live; the next restart takes it live as
// a new release, and clears it.
func TestStagedArtifactTakenByRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	d := h.stage(appConf{Version: "2"})
	if d.Kind != store.KindStage || d.State != store.StateSucceeded || d.Deployer != "OneDeploy" || !d.Done() {
		t.Errorf("the staging's record: %+v", d)
	}
	h.wantBody("/", "version=1")
	if h.staged() == nil || h.staged().Digest != d.Artifact.Digest {
		t.Fatalf("the app's staged artifact is %+v, want %s", h.staged(), d.Artifact.Digest)
	}
	r, err := h.m.Restart(context.Background(), testApp, deploy.Meta{Author: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r = h.wantState(r.ID, store.StateSucceeded)
	h.wantBody("/", "version=2")
	if r.Release != 2 || r.Artifact.Digest != d.Artifact.Digest || !hasEvent(r, "staged") {
		t.Errorf("the restart took release %d of %s:\n%s", r.Release, r.Artifact.Digest, events(r))
	}
	if h.staged() != nil {
		t.Errorf("the staged artifact is still there after the restart took it")
	}
	// The next restart is an ordinary one again.
	r, _ = h.m.Restart(context.Background(), testApp, deploy.Meta{})
	if r = h.wantState(r.ID, store.StateSucceeded); r.Release != 2 {
		t.Errorf("a second restart made release %d, want 2 again", r.Release)
	}
}

// TestStagedArtifactTakenBySettingsChange: a settings change takes a
// staged artifact live with the new settings; a deploy of another artifact
// drops it.
func TestStagedArtifactTakenBySettingsChange(t *testing.T) {
	h := newHarness(t, nil)
	h.deployLive(appConf{Version: "1"})
	h.stage(appConf{Version: "2"})
	d, _, err := h.m.ChangeSettings(context.Background(), testApp, settings.Change{Set: map[string]string{"GREETING": "hola"}}, false, deploy.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	h.wantState(d.ID, store.StateSucceeded)
	h.wantBody("/", "version=2")
	h.wantBody("/env?k=GREETING", "hola")

	h.stage(appConf{Version: "3"})
	h.deployLive(appConf{Version: "4"})
	if h.staged() != nil {
		t.Errorf("a deploy left the staged artifact in place")
	}
	r, _ := h.m.Restart(context.Background(), testApp, deploy.Meta{})
	h.wantState(r.ID, store.StateSucceeded)
	h.wantBody("/", "version=4")
}

// TestStageNeedsALiveRelease: with nothing live there is nothing for a
// restart to replace, so staging is refused, and stores no record.
func TestStageNeedsALiveRelease(t *testing.T) {
	h := newHarness(t, nil)
	_, err := h.m.Stage(context.Background(), deploy.DeployRequest{App: testApp, Artifact: bytes.NewReader(appConf{Version: "1"}.zip()), FileName: "app.zip"})
	if !errors.Is(err, deploy.ErrNothingLive) {
		t.Fatalf("staging without a live release: %v, want ErrNothingLive", err)
	}
	if deps, _ := h.store.Deployments(context.Background(), testApp); len(deps) != 0 {
		t.Errorf("a refused staging left %d deployments", len(deps))
	}
}

// TestRecords: a pipeline's records are kept under their ids, bounded in
// number (the oldest go), and an id is taken once.
func TestRecords(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	for i := range store.MaxRecords + 3 {
		if _, err := h.m.AddRecord(ctx, deploy.Record{App: testApp, ID: fmt.Sprintf("run-%d", i), Succeeded: true, Meta: deploy.Meta{Deployer: "VSTS"}}); err != nil {
			t.Fatal(err)
		}
	}
	deps, _ := h.store.Deployments(ctx, testApp)
	if len(deps) != store.MaxRecords || deps[0].ExternalID != "run-3" || deps[0].Kind != store.KindRecord || deps[0].State != store.StateSucceeded {
		t.Errorf("%d records kept, the oldest %q; want %d from run-3", len(deps), deps[0].ExternalID, store.MaxRecords)
	}
	for _, tt := range []struct {
		id   string
		want error
	}{
		{"run-50", store.ErrExists},
		{fmt.Sprint(deps[0].ID), store.ErrExists}, // a deployment's number
		{"", deploy.ErrBadMeta},
		{"../x", deploy.ErrBadMeta},
	} {
		if _, err := h.m.AddRecord(ctx, deploy.Record{App: testApp, ID: tt.id}); !errors.Is(err, tt.want) {
			t.Errorf("a record with id %q: %v, want %v", tt.id, err, tt.want)
		}
	}
	if _, err := h.m.AddRecord(ctx, deploy.Record{App: testApp, ID: "x", Meta: deploy.Meta{Deployer: "a\x1bb"}}); !errors.Is(err, deploy.ErrBadMeta) {
		t.Errorf("a deployer with a control character: %v, want ErrBadMeta", err)
	}
}
