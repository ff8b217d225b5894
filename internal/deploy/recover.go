package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/store"
)

// Recover makes the state a previous daemon left behind whole again, before
// the router serves: it kills instances that outlived their daemon, clears
// stale locks, marks unfinished deployments failed ("interrupted"), routes
// every app's hosts, and starts each app's current release again.
func (m *Manager) Recover(ctx context.Context) error {
	if err := m.killStrays(ctx); err != nil {
		return err
	}
	if err := m.opts.Store.ClearLocks(ctx); err != nil {
		return fmt.Errorf("clearing locks: %w", err)
	}
	if err := m.failUnfinished(ctx); err != nil {
		return err
	}
	apps, err := m.opts.Store.Apps(ctx)
	if err != nil {
		return err
	}
	for _, a := range apps {
		m.opts.Router.SetHosts(a.Name, m.Hosts(a.Name))
		if a.CurrentRelease == 0 {
			continue
		}
		if err := m.restore(ctx, a); err != nil {
			m.logger.Error("restarting app", "app", a.Name, "err", err)
		}
	}
	return nil
}

func (m *Manager) killStrays(ctx context.Context) error {
	recs, err := m.opts.Store.Instances(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if n := runtime.KillGroup(r.PID, r.StartTicks); n > 0 {
			m.logger.Info("killed instance left by a previous daemon", "app", r.App, "instance", r.ID, "pid", r.PID)
			m.opts.Logs.Platform(r.App, r.Release, "Stopped instance %s, left running by a daemon that died", r.ID)
		}
		if err := m.opts.Store.DeleteInstance(ctx, r.ID); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) failUnfinished(ctx context.Context) error {
	deps, err := m.opts.Store.AllDeployments(ctx)
	if err != nil {
		return err
	}
	for _, d := range deps {
		if d.Done() {
			continue
		}
		d.State, d.Reason, d.Finished = store.StateFailed, ErrInterrupted.Error(), time.Now().UTC()
		d.AddEvent(store.StepFailed, "Deployment failed: "+ErrInterrupted.Error())
		if err := m.opts.Store.PutDeployment(ctx, d); err != nil {
			return err
		}
		m.opts.Logs.Platform(d.App, d.Release, "Deployment %d: %s", d.ID, ErrInterrupted)
	}
	return nil
}

// restore starts app's current release again, as a deployment of its own so
// that its progress shows and the app's lock guards it.
func (m *Manager) restore(ctx context.Context, a store.App) error {
	_, err := m.begin(ctx, a.Name, op{kind: store.KindStart, author: "slipway", message: "the daemon started",
		prepare: func(ctx context.Context, d *store.Deployment) (plan, error) {
			a, rel, err := m.liveRelease(ctx, a.Name)
			if err != nil {
				return plan{}, err
			}
			n := a.Settings.WithDefaults().Instances
			return plan{rel: rel, instances: n, received: fmt.Sprintf("Start %s with %d instance(s) after the daemon started", rel.Version(), n)}, nil
		}})
	return err
}
