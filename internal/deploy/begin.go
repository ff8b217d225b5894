package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// op is one change to take live under the app's lock: an upload, a settings
// change, a scale, a restart, a rollback. All of them go through begin.
type op struct {
	kind                      string
	author, message, deployer string
	// wait queues the op behind a running deployment instead of failing
	// with a *store.LockedError.
	wait bool
	// prepare runs with the lock held and says what to take live; it may
	// write records (a new release). Its error ends the op before anything
	// starts, and the deployment record is removed.
	prepare func(ctx context.Context, d *store.Deployment) (plan, error)
}

// plan is what a deployment takes live.
type plan struct {
	rel store.Release
	// instances is how many instances of rel serve once it is done.
	instances int
	// scale keeps the live instances, adding or removing some; otherwise
	// every live instance is replaced.
	scale bool
	// received is the message of the deployment's first event.
	received string
}

// begin records a deployment for o, takes the app's lock for it, and runs
// it in the background.
func (m *Manager) begin(ctx context.Context, app string, o op) (store.Deployment, error) {
	if err := (Meta{Author: o.author, Message: o.message, Deployer: o.deployer}).Validate(); err != nil {
		return store.Deployment{}, err
	}
	for {
		d, err := m.tryBegin(ctx, app, o)
		var locked *store.LockedError
		if !o.wait || !errors.As(err, &locked) {
			return d, err
		}
		if err := m.waitFinished(ctx, app, locked.Deployment); err != nil {
			return d, err
		}
	}
}

func (m *Manager) tryBegin(ctx context.Context, app string, o op) (store.Deployment, error) {
	d := store.Deployment{App: app, Kind: o.kind, Author: o.author, Message: o.message, Deployer: o.deployer,
		State: store.StateRunning, Started: time.Now().UTC()}
	if err := m.opts.Store.CreateDeployment(ctx, &d); err != nil {
		return d, err
	}
	undo := context.WithoutCancel(ctx)
	if err := m.opts.Store.Lock(ctx, app, d.ID); err != nil {
		m.opts.Store.DeleteDeployment(undo, app, d.ID)
		return d, err
	}
	p, err := o.prepare(ctx, &d)
	if err != nil {
		m.opts.Store.Unlock(undo, app, d.ID)
		m.opts.Store.DeleteDeployment(undo, app, d.ID)
		return d, err
	}
	d.Release, d.Artifact = p.rel.Number, p.rel.Artifact
	d.AddEvent(store.StepReceived, p.received)
	if err := m.opts.Store.PutDeployment(ctx, d); err != nil {
		m.opts.Store.Unlock(undo, app, d.ID)
		return d, err
	}
	m.opts.Logs.Platform(app, p.rel.Number, "Deployment %d (%s): %s", d.ID, d.Kind, p.received)
	runCtx, cancel := context.WithCancelCause(m.ctx)
	m.mu.Lock()
	m.cancels[app] = cancel
	if m.ctx.Err() != nil { // Stop came first: it did not see this one
		cancel(ErrShuttingDown)
	}
	m.mu.Unlock()
	m.wg.Add(1)
	go m.run(runCtx, cancel, &tracker{m: m, d: d}, p, m.opts.Router.Expect(app))
	return d, nil
}

// waitFinished blocks until deployment id of app has ended.
func (m *Manager) waitFinished(ctx context.Context, app string, id int) error {
	_, err := m.opts.Store.WaitDeployment(ctx, app, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// waitUnlocked returns once no deployment of app runs, or at once with a
// *store.LockedError if wait is false.
func (m *Manager) waitUnlocked(ctx context.Context, app string, wait bool) error {
	for {
		holder, err := m.opts.Store.LockHolder(ctx, app)
		if err != nil || holder == 0 {
			return err
		}
		if !wait {
			return &store.LockedError{App: app, Deployment: holder}
		}
		if err := m.waitFinished(ctx, app, holder); err != nil {
			return err
		}
	}
}

// newRelease records rel as the app's next release, noting what it changes
// from the release before it.
func (m *Manager) newRelease(ctx context.Context, rel *store.Release, deployment int) error {
	rels, err := m.opts.Store.Releases(ctx, rel.App)
	if err != nil {
		return err
	}
	var prev store.Release
	if len(rels) > 0 {
		prev = rels[len(rels)-1]
	}
	rel.Changes = nil
	if rel.Artifact.Digest != prev.Artifact.Digest {
		rel.Changes = append(rel.Changes, fmt.Sprintf("artifact %s (%.19s…)", rel.Artifact.Name, rel.Artifact.Digest))
	}
	rel.Changes = append(rel.Changes, rel.Settings.Changes(prev.Settings)...)
	rel.Created, rel.Deployment = time.Now().UTC(), deployment
	return m.opts.Store.CreateRelease(ctx, rel)
}

// releaseSettings is the snapshot of an app's settings a release keeps:
// everything but the instance count, which belongs to the app.
func releaseSettings(s settings.Settings) settings.Settings {
	s = s.Clone()
	s.Instances = 0
	return s
}

// liveRelease reads the app and its live release.
func (m *Manager) liveRelease(ctx context.Context, app string) (store.App, store.Release, error) {
	a, err := m.opts.Store.App(ctx, app)
	if err != nil {
		return a, store.Release{}, err
	}
	if a.CurrentRelease == 0 {
		return a, store.Release{}, fmt.Errorf("%w: deploy app %s first", ErrNothingLive, app)
	}
	rel, err := m.opts.Store.Release(ctx, app, a.CurrentRelease)
	return a, rel, err
}
