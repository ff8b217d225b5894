package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// Meta is who asks for a change and why.
type Meta struct {
	Author  string
	Message string
	// Deployer names the client asking, as App Service pipelines name
	// themselves (GITHUB_ONE_DEPLOY, …); empty for the native API.
	Deployer string
	// Wait queues the change behind a running deployment instead of
	// failing with a *store.LockedError.
	Wait bool
}

// ErrBadMeta is wrapped by the errors of Meta.Validate and of a record's
// id: what a deploy call says of itself, not its artifact.
var ErrBadMeta = errors.New("invalid deployment details")

// Validate bounds the author, the message and the deployer before
// anything is stored. A message may span lines; none may hold other
// control characters.
func (m Meta) Validate() error {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"author", m.Author, store.MaxAuthorBytes}, {"message", m.Message, store.MaxMessageBytes}, {"deployer", m.Deployer, store.MaxDeployerBytes}} {
		if len(f.v) > f.max {
			return fmt.Errorf("%w: the %s is %d bytes long; the limit is %d, shorten it", ErrBadMeta, f.name, len(f.v), f.max)
		}
		if !utf8.ValidString(f.v) || strings.ContainsFunc(f.v, func(r rune) bool { return unicode.IsControl(r) && (r != '\n' && r != '\t' || f.name != "message") }) {
			return fmt.Errorf("%w: the %s must be UTF-8 text without control characters", ErrBadMeta, f.name)
		}
	}
	return nil
}

// DeployRequest is an upload to take live.
type DeployRequest struct {
	App      string
	Artifact io.Reader
	// FileName is the uploaded file's name; it helps tell a jar from a zip.
	FileName string
	// Size is the artifact's length in bytes when known (Content-Length),
	// else -1: an upload the disk cannot hold is refused before it is read.
	Size int64
	// Unwrap takes a zip that holds one jar or war and nothing else as
	// that jar or war, as App Service pipelines send one (see
	// artifact.Store.PutUnwrapped).
	Unwrap bool
	Meta
}

// Validate checks what req says of itself, before the upload is read:
// its details (Meta.Validate) and its file name (artifact.CheckName).
func (req DeployRequest) Validate() error {
	if err := req.Meta.Validate(); err != nil {
		return err
	}
	return artifact.CheckName(req.FileName)
}

// putArtifact stores req's upload.
func (m *Manager) putArtifact(req DeployRequest) (store.ArtifactRef, error) {
	if req.Unwrap {
		return m.opts.Artifacts.PutUnwrapped(req.Artifact, req.FileName, req.Size)
	}
	return m.opts.Artifacts.Put(req.Artifact, req.FileName, req.Size)
}

// Deploy stores the artifact, records a new release with the app's current
// settings, and starts a deployment of it in the background. Unless
// req.Wait, it fails with a *store.LockedError before reading the upload
// while another deployment of the app runs.
func (m *Manager) Deploy(ctx context.Context, req DeployRequest) (store.Deployment, error) {
	if err := req.Validate(); err != nil { // before the upload is read
		return store.Deployment{}, err
	}
	if _, err := m.opts.Store.App(ctx, req.App); err != nil {
		return store.Deployment{}, err
	}
	if !req.Wait {
		if err := m.waitUnlocked(ctx, req.App, false); err != nil {
			return store.Deployment{}, err
		}
	}
	ref, err := m.putArtifact(req)
	if err != nil {
		return store.Deployment{}, err
	}
	return m.begin(ctx, req.App, op{kind: store.KindDeploy, author: req.Author, message: req.Message, deployer: req.Deployer, wait: req.Wait,
		prepare: func(ctx context.Context, d *store.Deployment) (plan, error) {
			a, err := m.opts.Store.App(ctx, req.App)
			if err != nil {
				return plan{}, err
			}
			if err := m.dropStaged(ctx, a); err != nil { // this upload replaces it
				return plan{}, err
			}
			rel := store.Release{App: req.App, Artifact: ref, Settings: releaseSettings(a.Settings), Author: req.Author, Message: req.Message}
			if err := m.resolveStack(&rel); err != nil {
				return plan{}, err
			}
			if err := m.newRelease(ctx, &rel, d.ID); err != nil {
				return plan{}, err
			}
			return plan{rel: rel, instances: a.Settings.WithDefaults().Instances,
				received: fmt.Sprintf("Received %s (%d bytes, %s) as %s", ref.Name, ref.Size, ref.Digest, rel.Version())}, nil
		}})
}

// ChangeSettings applies a change to app's settings. If the app has a live
// release, and noRestart is false, the change makes a new release (same
// artifact, new settings) that goes live through a deployment, which is
// returned; otherwise the change waits for the next deployment, and the
// returned deployment is nil. A change that changes nothing
// (settings.Change.Check) makes no release and no deployment and stores
// nothing: the error wraps settings.ErrUnchanged and says why, and the
// settings returned with it are the app's, as they are.
func (m *Manager) ChangeSettings(ctx context.Context, app string, c settings.Change, noRestart bool, meta Meta) (*store.Deployment, settings.Settings, error) {
	a, err := m.opts.Store.App(ctx, app)
	if err != nil {
		return nil, settings.Settings{}, err
	}
	if err := c.Check(a.Settings); err != nil {
		return nil, a.Settings, err // refused, or nothing to do: said before waiting for anything
	}
	apply := func(s settings.Settings) (settings.Settings, error) {
		if err := c.Check(s); err != nil {
			return s, err
		}
		return c.Apply(s)
	}
	if noRestart || a.CurrentRelease == 0 {
		s, err := m.saveSettings(ctx, app, meta.Wait, apply)
		return nil, s, err
	}
	var ns settings.Settings
	d, err := m.begin(ctx, app, op{kind: store.KindSettings, author: meta.Author, message: meta.Message, deployer: meta.Deployer, wait: meta.Wait,
		prepare: func(ctx context.Context, d *store.Deployment) (plan, error) {
			a, cur, err := m.liveRelease(ctx, app)
			if err != nil {
				return plan{}, err
			}
			// Checked again under the lock: a change this one queued
			// behind may have made it already.
			if ns, err = apply(a.Settings); err != nil {
				return plan{}, err
			}
			art := takeStaged(&a, cur.Artifact) // a is written below
			rel := store.Release{App: app, Artifact: art, Settings: releaseSettings(ns), Author: meta.Author, Message: meta.Message}
			if err := m.resolveStack(&rel); err != nil {
				return plan{}, err
			}
			// The release first: if the store refuses it, the app's
			// settings are as they were.
			if err := m.newRelease(ctx, &rel, d.ID); err != nil {
				return plan{}, err
			}
			a.Settings = ns
			if err := m.opts.Store.PutApp(ctx, a); err != nil {
				return plan{}, err
			}
			return plan{rel: rel, instances: ns.WithDefaults().Instances,
				received: fmt.Sprintf("Settings change as %s: %s", rel.Version(), strings.Join(rel.Changes, "; "))}, nil
		}})
	if errors.Is(err, settings.ErrUnchanged) {
		return nil, ns, err
	}
	if err != nil {
		return nil, settings.Settings{}, err
	}
	return &d, ns, nil
}

// saveSettings changes an app's settings without a deployment, once no
// deployment of it runs. When change fails with settings.ErrUnchanged,
// the app's settings are returned with the error.
//
// The write is made only if no deployment took the lock, and nothing
// changed the app, since the read; else it is made again from a new read,
// once the lock is free.
func (m *Manager) saveSettings(ctx context.Context, app string, wait bool, change func(settings.Settings) (settings.Settings, error)) (settings.Settings, error) {
	for {
		if err := m.waitUnlocked(ctx, app, wait); err != nil {
			return settings.Settings{}, err
		}
		a, rev, err := m.opts.Store.AppAt(ctx, app)
		if err != nil {
			return settings.Settings{}, err
		}
		ns, err := change(a.Settings)
		if errors.Is(err, settings.ErrUnchanged) {
			return a.Settings, err
		}
		if err != nil {
			return settings.Settings{}, err
		}
		changes := ns.Changes(a.Settings)
		a.Settings = ns
		err = m.opts.Store.PutAppUnlocked(ctx, a, rev)
		if errors.Is(err, store.ErrChanged) {
			continue
		}
		if err != nil {
			return settings.Settings{}, err
		}
		if len(changes) > 0 {
			m.opts.Logs.Platform(app, a.CurrentRelease, "Settings changed, for the next deployment: %s", strings.Join(changes, "; "))
		}
		return ns, nil
	}
}

// Scale runs n instances of app's live release: scaling up adds warmed
// instances beside the others, scaling down drains the removed ones first.
// Without a live release it only records n; the deployment is then nil.
// If the app has n instances already, nothing happens and the error wraps
// settings.ErrUnchanged.
func (m *Manager) Scale(ctx context.Context, app string, n int, meta Meta) (*store.Deployment, error) {
	if n < 1 || n > settings.MaxInstances {
		return nil, fmt.Errorf("%w: instances must be between 1 and %d, not %d", settings.ErrInvalidSettings, settings.MaxInstances, n)
	}
	a, err := m.opts.Store.App(ctx, app)
	if err != nil {
		return nil, err
	}
	if _, err := a.Settings.Scale(n); err != nil {
		return nil, err // nothing to do: said before waiting for anything
	}
	setN := func(s settings.Settings) (settings.Settings, error) { return s.Scale(n) }
	if a.CurrentRelease == 0 {
		_, err := m.saveSettings(ctx, app, meta.Wait, setN)
		return nil, err
	}
	d, err := m.begin(ctx, app, op{kind: store.KindScale, author: meta.Author, message: meta.Message, deployer: meta.Deployer, wait: meta.Wait,
		prepare: func(ctx context.Context, d *store.Deployment) (plan, error) {
			a, cur, err := m.liveRelease(ctx, app)
			if err != nil {
				return plan{}, err
			}
			from := a.Settings.WithDefaults().Instances
			if a.Settings, err = a.Settings.Scale(n); err != nil {
				return plan{}, err // checked again under the lock
			}
			if err := m.opts.Store.PutApp(ctx, a); err != nil {
				return plan{}, err
			}
			return plan{rel: cur, instances: n, scale: true,
				received: fmt.Sprintf("Scale %s from %d to %d instance(s)", cur.Version(), from, n)}, nil
		}})
	return &d, err
}

// Restart replaces every instance of app's live release with a fresh one,
// warmed up before the swap. With a staged artifact (see Stage), the fresh
// instances run a new release of it, with the app's settings.
func (m *Manager) Restart(ctx context.Context, app string, meta Meta) (store.Deployment, error) {
	return m.begin(ctx, app, op{kind: store.KindRestart, author: meta.Author, message: meta.Message, deployer: meta.Deployer, wait: meta.Wait,
		prepare: func(ctx context.Context, d *store.Deployment) (plan, error) {
			a, cur, err := m.liveRelease(ctx, app)
			if err != nil {
				return plan{}, err
			}
			n := a.Settings.WithDefaults().Instances
			if a.Staged != nil {
				return m.releaseStaged(ctx, a, d, meta, n)
			}
			return plan{rel: cur, instances: n, received: fmt.Sprintf("Restart %s with %d fresh instance(s)", cur.Version(), n)}, nil
		}})
}

// Rollback takes release `to` of app live again, as a new release with its
// artifact and settings (the instance count stays). to 0 means the release
// that was live before the current one.
func (m *Manager) Rollback(ctx context.Context, app string, to int, meta Meta) (store.Deployment, error) {
	return m.begin(ctx, app, op{kind: store.KindRollback, author: meta.Author, message: meta.Message, deployer: meta.Deployer, wait: meta.Wait,
		prepare: func(ctx context.Context, d *store.Deployment) (plan, error) {
			a, cur, err := m.liveRelease(ctx, app)
			if err != nil {
				return plan{}, err
			}
			target, err := m.rollbackTarget(ctx, app, cur.Number, to)
			if err != nil {
				return plan{}, err
			}
			if _, err := os.Stat(m.opts.Artifacts.Path(target.Artifact.Digest)); err != nil {
				return plan{}, fmt.Errorf("%w: %s's artifact %s is gone (Slipway keeps the artifacts of the last %d releases); deploy the file again instead",
					ErrArtifactGone, target.Version(), target.Artifact.Name, m.opts.KeepReleases)
			}
			ns := target.Settings.Clone()
			ns.Instances = a.Settings.Instances
			msg := meta.Message
			if msg == "" {
				msg = "rollback to " + target.Version()
			}
			rel := store.Release{App: app, Artifact: target.Artifact, Settings: releaseSettings(ns), Author: meta.Author, Message: msg, RolledBackFrom: target.Number}
			if err := m.resolveStack(&rel); err != nil {
				return plan{}, err
			}
			if err := m.newRelease(ctx, &rel, d.ID); err != nil {
				return plan{}, err
			}
			a.Settings = ns
			if err := m.opts.Store.PutApp(ctx, a); err != nil {
				return plan{}, err
			}
			return plan{rel: rel, instances: ns.WithDefaults().Instances,
				received: fmt.Sprintf("Roll back from %s to %s, as %s", cur.Version(), target.Version(), rel.Version())}, nil
		}})
}

// rollbackTarget finds release `to`, or, for 0, the release that was live
// before the current one: the last release before it that a deployment
// took live. An ErrNoRelease says why there is nothing to roll back to; a
// *store.NotFoundError, that release `to` does not exist.
func (m *Manager) rollbackTarget(ctx context.Context, app string, current, to int) (store.Release, error) {
	if to == current {
		return store.Release{}, fmt.Errorf("%w: v%d is already live", ErrNoRelease, to)
	}
	if to == 0 {
		deps, err := m.opts.Store.Deployments(ctx, app)
		if err != nil {
			return store.Release{}, err
		}
		for i := len(deps) - 1; i >= 0 && to == 0; i-- {
			if d := deps[i]; d.State == store.StateSucceeded && d.Release != current {
				to = d.Release
			}
		}
		if to == 0 {
			return store.Release{}, fmt.Errorf("%w: no release was live before v%d; name one with --to", ErrNoRelease, current)
		}
	}
	return m.opts.Store.Release(ctx, app, to) // a *store.NotFoundError says what to do if there is none
}
