package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

// Stage stores an upload as app's staged artifact, to be taken live later
// (App Service's deploy with restart=false): the next Restart or settings
// change makes a release of it with the app's settings, and a Deploy of
// another artifact replaces it. The live release does not change. It
// records a deployment of kind store.KindStage, finished at once, so that the
// upload shows in the history. It needs a live release (ErrNothingLive:
// there would be nothing to restart), and, unless req.Wait, fails with a
// *store.LockedError before reading the upload while a deployment runs.
func (m *Manager) Stage(ctx context.Context, req DeployRequest) (store.Deployment, error) {
	if err := req.Validate(); err != nil {
		return store.Deployment{}, err
	}
	a, err := m.opts.Store.App(ctx, req.App)
	if err != nil {
		return store.Deployment{}, err
	}
	if a.CurrentRelease == 0 {
		return store.Deployment{}, fmt.Errorf("%w: app %s has nothing to restart with a staged artifact; deploy it with restart=true first", ErrNothingLive, req.App)
	}
	if err := m.waitUnlocked(ctx, req.App, req.Wait); err != nil {
		return store.Deployment{}, err
	}
	ref, err := m.putArtifact(req)
	if err != nil {
		return store.Deployment{}, err
	}
	if err := m.resolveStack(&store.Release{App: req.App, Artifact: ref, Settings: releaseSettings(a.Settings)}); err != nil {
		return store.Deployment{}, err // refused now rather than at the restart
	}
	for {
		d, err := m.tryStage(ctx, req, ref)
		var locked *store.LockedError
		if !req.Wait || !errors.As(err, &locked) {
			return d, err
		}
		if err := m.waitFinished(ctx, req.App, locked.Deployment); err != nil {
			return d, err
		}
	}
}

// tryStage records ref as staged under the app's lock, which keeps the
// app's record from changing under a deployment's feet.
func (m *Manager) tryStage(ctx context.Context, req DeployRequest, ref store.ArtifactRef) (store.Deployment, error) {
	d := store.Deployment{App: req.App, Kind: store.KindStage, Artifact: ref, Author: req.Author, Message: req.Message,
		Deployer: req.Deployer, State: store.StateRunning, Started: time.Now().UTC()}
	if err := m.opts.Store.CreateDeployment(ctx, &d); err != nil {
		return d, err
	}
	undo := context.WithoutCancel(ctx)
	if err := m.opts.Store.Lock(ctx, req.App, d.ID); err != nil {
		m.opts.Store.DeleteDeployment(undo, req.App, d.ID)
		return d, err
	}
	defer m.opts.Store.Unlock(undo, req.App, d.ID)
	a, err := m.opts.Store.App(ctx, req.App)
	if err == nil {
		a.Staged = &ref
		err = m.opts.Store.PutApp(ctx, a)
	}
	if err != nil {
		m.opts.Store.DeleteDeployment(undo, req.App, d.ID)
		return d, err
	}
	d.AddEvent(store.StepReceived, fmt.Sprintf("Received %s (%d bytes, %s), staged: the next restart or settings change takes it live", ref.Name, ref.Size, ref.Digest))
	d.State, d.Finished = store.StateSucceeded, time.Now().UTC()
	d.AddEvent(store.StepSucceeded, fmt.Sprintf("Staged; v%d keeps serving", a.CurrentRelease))
	if err := m.opts.Store.PutDeployment(undo, d); err != nil {
		return d, err
	}
	m.opts.Logs.Platform(req.App, a.CurrentRelease, "Deployment %d (%s): staged %s for the next restart or settings change", d.ID, d.Kind, ref.Name)
	return d, nil
}

// dropStaged forgets a's staged artifact, if it has one: a deploy replaces
// it. Call with the app's lock held.
func (m *Manager) dropStaged(ctx context.Context, a store.App) error {
	if a.Staged == nil {
		return nil
	}
	a.Staged = nil
	return m.opts.Store.PutApp(ctx, a)
}

// takeStaged returns a's staged artifact, cleared from a (which the
// caller writes), or live if there is none.
func takeStaged(a *store.App, live store.ArtifactRef) store.ArtifactRef {
	if a.Staged == nil {
		return live
	}
	art := *a.Staged
	a.Staged = nil
	return art
}

// releaseStaged plans a restart that takes a's staged artifact live, as a
// new release with the app's settings. Call with the app's lock held.
func (m *Manager) releaseStaged(ctx context.Context, a store.App, d *store.Deployment, meta Meta, n int) (plan, error) {
	art := takeStaged(&a, store.ArtifactRef{})
	rel := store.Release{App: a.Name, Artifact: art, Settings: releaseSettings(a.Settings), Author: meta.Author, Message: meta.Message}
	if err := m.resolveStack(&rel); err != nil {
		return plan{}, err
	}
	if err := m.newRelease(ctx, &rel, d.ID); err != nil {
		return plan{}, err
	}
	if err := m.opts.Store.PutApp(ctx, a); err != nil {
		return plan{}, err
	}
	return plan{rel: rel, instances: n,
		received: fmt.Sprintf("Restart with the staged %s (%s) as %s, %d instance(s)", art.Name, art.Digest, rel.Version(), n)}, nil
}
