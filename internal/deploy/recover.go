package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/store"
)

// Recover makes the state a previous daemon left behind whole again, before
// the router serves: it removes the release directories left half made,
// adopts the instances of each app's live release that outlived their
// daemon and kills the others, ends the leases those others held (the
// adopted keep theirs, and their SLIPWAY_LEASE_URL), clears stale locks,
// marks unfinished deployments failed ("interrupted"), routes every app's
// hosts (its custom domains included), and starts what is missing of each
// app's live release.
func (m *Manager) Recover(ctx context.Context) error {
	m.removePartialReleases()
	adopted, err := m.adoptOrKill(ctx)
	if err != nil {
		return err
	}
	m.sweep(adopted)
	if err := m.opts.Store.SweepLeases(ctx, func(app, holder string) bool {
		return slices.ContainsFunc(adopted[app], func(i *instance) bool { return i.ID == holder })
	}); err != nil {
		return fmt.Errorf("ending the leases of instances that are gone: %w", err)
	}
	m.supervise("single runners", m.runRunners)
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
	if err := m.LoadDomains(ctx); err != nil {
		return err
	}
	for _, a := range apps {
		m.opts.Router.SetHosts(a.Name, m.Hosts(a.Name)) // its custom domains too
		p, err := m.opts.Store.Policy(ctx, a.Name)
		if err != nil {
			return err
		}
		m.opts.Router.SetPolicy(a.Name, p) // before any instance serves
		if a.CurrentRelease == 0 {
			continue
		}
		// Requests wait for the release's instances as they would in a
		// deployment, from the first request on.
		s := m.settingsOf(a.Name, a.CurrentRelease)
		m.opts.Router.Configure(a.Name, routeConfig(s))
		insts := adopted[a.Name]
		if len(insts) > 0 {
			m.serveAdopted(ctx, a, insts)
		}
		if want := a.Settings.WithDefaults().Instances; len(insts) < want && !m.clustered() {
			if err := m.restore(ctx, a, len(insts) > 0); err != nil {
				m.logger.Error("restarting app", "app", a.Name, "err", err)
			}
		}
	}
	if m.clustered() {
		// A node of a cluster starts what it lacks of each live release
		// by itself, without a deployment (see converge).
		m.opts.Router.SetNotReady("catching up to the apps' live releases")
	}
	m.supervise("following rollouts", m.followRollouts)
	return nil
}

// removePartialReleases removes what a crash left of release directories
// being made: they are made under a temporary name and renamed once whole
// (see artifact.Store.Prepare). One that cannot be removed is only
// reported; it takes space, but nothing uses it.
func (m *Manager) removePartialReleases() {
	dirs, _ := filepath.Glob(filepath.Join(m.opts.DataDir, "apps", "*", "releases"))
	for _, d := range dirs {
		if err := atomicfile.RemoveTemps(d); err != nil {
			m.logger.Warn("removing partial release directories", "dir", d, "err", err)
		}
	}
}

// serveAdopted routes to adopted instances at once; they were serving when
// the earlier daemon stopped, and their health checks start now.
func (m *Manager) serveAdopted(ctx context.Context, a store.App, insts []*instance) {
	rel, err := m.opts.Store.Release(ctx, a.Name, a.CurrentRelease)
	if err != nil {
		m.logger.Error("reading live release", "app", a.Name, "err", err)
		return
	}
	s := rel.Settings.WithDefaults()
	m.mu.Lock()
	m.publishLocked(a.Name, insts, &s)
	m.mu.Unlock()
	m.goLive(insts, s)
	for _, inst := range insts {
		m.opts.Logs.Platform(a.Name, inst.release, "Adopted instance %s (pid %d, port %d), left running by the earlier daemon", inst.ID, inst.PID, inst.Port)
	}
}

// adoptOrKill goes through the instances the store remembers: those of an
// app's live release that still run are adopted, the others (a deployment
// that was interrupted, an app deleted meanwhile) are killed.
func (m *Manager) adoptOrKill(ctx context.Context) (map[string][]*instance, error) {
	recs, err := m.opts.Store.Instances(ctx)
	if err != nil {
		return nil, err
	}
	adopted := make(map[string][]*instance)
	for _, r := range recs {
		if inst := m.adopt(ctx, r, len(adopted[r.App])); inst != nil {
			adopted[r.App] = append(adopted[r.App], inst)
			// Recorded again with this node's name: a record of an
			// earlier version has none.
			if err := m.opts.Store.PutInstance(ctx, r); err != nil {
				return nil, err
			}
			continue
		}
		if n := runtime.KillGroup(r.PID, r.StartTicks, r.Cgroup); n > 0 {
			m.logger.Info("killed instance left by an earlier daemon", "app", r.App, "instance", r.ID, "pid", r.PID)
			m.opts.Logs.Platform(r.App, r.Release, "Stopped instance %s of v%d, left running by an earlier daemon", r.ID, r.Release)
		}
		if err := m.opts.Store.DeleteInstance(ctx, r.ID); err != nil {
			return nil, err
		}
	}
	return adopted, nil
}

// adopt takes over r if it runs its app's live release; nil otherwise.
func (m *Manager) adopt(ctx context.Context, r store.InstanceRecord, index int) *instance {
	a, err := m.opts.Store.App(ctx, r.App)
	if err != nil || a.CurrentRelease != r.Release {
		return nil
	}
	spec := m.spec(r.App, r.Release, r.Port, r.ID)
	spec.Cgroup = r.Cgroup
	ri, err := runtime.Adopt(spec, r.PID, r.StartTicks)
	if err != nil {
		return nil
	}
	inst := m.newInstance(ri, r.App, r.Release, index, spec)
	m.registerLeases(r.App, r.ID, r.Release) // the same SLIPWAY_LEASE_URL it was given (see lease.LoadKey)
	m.watchLeases(inst)
	return inst
}

// sweep removes what instances that no longer run left behind: their
// output files, temp directories and cgroups. (Their output was passed on
// up to where the earlier daemon stopped reading.)
func (m *Manager) sweep(adopted map[string][]*instance) {
	keep := make(map[string]bool)
	for _, insts := range adopted {
		for _, inst := range insts {
			keep[inst.ID] = true
		}
	}
	if m.opts.Cgroups != nil {
		m.opts.Cgroups.Sweep(keep)
	}
	apps, _ := filepath.Glob(filepath.Join(m.opts.DataDir, "apps", "*"))
	for _, dir := range apps {
		tmps, _ := os.ReadDir(filepath.Join(dir, "tmp"))
		for _, e := range tmps {
			if !keep[e.Name()] {
				os.RemoveAll(filepath.Join(dir, "tmp", e.Name()))
			}
		}
		leases, _ := os.ReadDir(filepath.Join(dir, "leases"))
		for _, e := range leases {
			if !keep[e.Name()] {
				os.RemoveAll(filepath.Join(dir, "leases", e.Name()))
			}
		}
		outs, _ := os.ReadDir(filepath.Join(dir, "instances"))
		for _, e := range outs {
			id, _, _ := strings.Cut(e.Name(), ".")
			if !keep[id] {
				os.Remove(filepath.Join(dir, "instances", e.Name()))
			}
		}
	}
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
		// A deployment another node runs holds its app's lock.
		if holder, err := m.opts.Store.LockHolder(ctx, d.App); err != nil || holder == d.ID {
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

// restore starts app's current release again, or with scale only the
// instances it lacks, as a deployment of its own so that its progress shows
// and the app's lock guards it.
func (m *Manager) restore(ctx context.Context, a store.App, scale bool) error {
	_, err := m.begin(ctx, a.Name, op{kind: store.KindStart, author: "slipway", message: "the daemon started",
		prepare: func(ctx context.Context, d *store.Deployment) (plan, error) {
			a, rel, err := m.liveRelease(ctx, a.Name)
			if err != nil {
				return plan{}, err
			}
			n := a.Settings.WithDefaults().Instances
			return plan{rel: rel, instances: n, scale: scale, received: fmt.Sprintf("Start %s with %d instance(s) after the daemon started", rel.Version(), n)}, nil
		}})
	return err
}
