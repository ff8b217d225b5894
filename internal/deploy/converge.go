package deploy

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// A node of a cluster converges on the cluster's state by itself: it
// runs each app's live release where its placement puts it, forwards the
// app's requests where it does not, and keeps its router's hosts and
// access rules as the coordinator changed them.

// convergeEvery is how often a node of a cluster compares what it runs
// with each app's live release.
const convergeEvery = time.Second

// catchUpRetry is how long a node waits before trying again to start a
// live release that failed to start.
const catchUpRetry = 10 * time.Second

// converge starts on this node each app's live release where it runs
// another, or none: after it joined, restarted, or missed a rollout while
// it was cut off. The router's health endpoint says the node is not
// ready until it has caught up once.
func (m *Manager) converge() {
	// The rollouts first, then the apps: a rollout makes its release the
	// live one before it ends (see finishSwap), so an app whose rollout
	// has ended by the second read has its new live release there. Read
	// the other way round, a rollout that ends between the two reads
	// shows as no rollout and the old live release, and the node would
	// "catch up" to the release it has just switched from.
	under, err := m.underRollout()
	if err != nil {
		return
	}
	apps, err := m.opts.Store.Apps(m.ctx)
	if err != nil {
		return
	}
	m.route(apps)
	labels, err := m.ownLabels()
	if err != nil {
		return
	}
	m.stageMu.Lock()
	defer m.stageMu.Unlock()
	behind := 0
	for _, a := range apps {
		if a.CurrentRelease == 0 || under[a.Name] {
			continue
		}
		if !settings.Places(m.settingsOf(a.Name, a.CurrentRelease).Placement, labels) {
			m.forward(a.Name)
			continue
		}
		live := m.liveInstances(a.Name)
		if len(live) > 0 && live[0].release == a.CurrentRelease {
			continue
		}
		behind++
		if m.catching[a.Name] || time.Since(m.failedCatchUp[a.Name]) < catchUpRetry {
			continue
		}
		m.catching[a.Name] = true
		m.spawn("catching up "+a.Name, func() { m.catchUp(a) })
	}
	if behind == 0 && !m.caughtUp {
		m.caughtUp = true
		m.opts.Router.SetNotReady("")
		m.logger.Info("cluster: this node runs every app's live release; its health endpoint answers ready")
	}
}

// ownLabels are this node's labels, from its registration.
func (m *Manager) ownLabels() (map[string]string, error) {
	ns, err := m.opts.Store.Nodes(m.ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if n.Name == m.opts.Store.NodeName() {
			return n.Labels, nil
		}
	}
	return nil, errors.New("this node is not registered")
}

// forward makes the forwarder app's backend on this node, which the
// app's placement leaves out, and retires the instances it ran here.
func (m *Manager) forward(app string) {
	if m.opts.ForwardDial == nil {
		return
	}
	m.mu.Lock()
	if m.forwarding[app] != nil {
		m.mu.Unlock()
		return
	}
	m.forwarding[app] = router.NewDialBackend("forwarder", m.opts.ForwardDial)
	old := slices.Concat(m.live[app], m.sick[app])
	delete(m.sick, app)
	m.publishLocked(app, nil, nil)
	m.mu.Unlock()
	m.logger.Info("cluster: this node runs no instance of the app; its requests go to a node that does", "app", app)
	if len(old) > 0 {
		m.spawn("retiring "+app, func() { m.retire(nil, app, old) })
	}
}

// catchUp starts a's live release on this node and swaps to it.
func (m *Manager) catchUp(a store.App) {
	n := a.Settings.WithDefaults().Instances
	node := m.opts.Store.NodeName()
	m.opts.Logs.Platform(a.Name, a.CurrentRelease, "Node %s: catching up to v%d with %d instance(s)", node, a.CurrentRelease, n)
	started, err := m.startWarm(m.ctx, store.Rollout{App: a.Name, Release: a.CurrentRelease, Instances: n})
	m.stageMu.Lock()
	delete(m.catching, a.Name)
	if err != nil {
		m.failedCatchUp[a.Name] = time.Now()
	}
	m.stageMu.Unlock()
	if err != nil {
		m.opts.Logs.Platform(a.Name, a.CurrentRelease, "Node %s: could not start v%d (%v); trying again in %s", node, a.CurrentRelease, err, catchUpRetry)
		return
	}
	// Starting took a while: a rollout may have begun, or made another
	// release the live one, meanwhile. What was started then is not to
	// serve.
	if !m.stillLive(a) {
		m.opts.Logs.Platform(a.Name, a.CurrentRelease, "Node %s: v%d is no longer the live release, or a deployment is under way; stopping what was started", node, a.CurrentRelease)
		m.stopAll(a.Name, started, m.stopGrace(a.Name))
		return
	}
	s := m.settingsOf(a.Name, a.CurrentRelease)
	m.mu.Lock()
	old := slices.Concat(m.live[a.Name], m.sick[a.Name])
	delete(m.sick, a.Name)
	m.publishLocked(a.Name, started, &s)
	m.mu.Unlock()
	m.goLive(started, s)
	m.opts.Logs.Platform(a.Name, a.CurrentRelease, "Node %s: caught up, serving v%d", node, a.CurrentRelease)
	m.retire(nil, a.Name, old)
	m.prune(context0())
}

// route keeps this node's router in step with the changes made at the
// coordinator: the apps made or removed, their access rules and their
// custom domains.
func (m *Manager) route(apps []store.App) {
	if m.domains.mu.TryLock() { // a domain change under way here reloads them itself
		err := m.LoadDomains(m.ctx)
		m.domains.mu.Unlock()
		if err != nil {
			return
		}
	}
	now := make(map[string]bool, len(apps))
	for _, a := range apps {
		now[a.Name] = true
		p, err := m.opts.Store.Policy(m.ctx, a.Name)
		if err != nil {
			continue
		}
		pj, _ := json.Marshal(p)
		hosts := m.Hosts(a.Name)
		seen := m.routed[a.Name]
		if seen.policy != string(pj) {
			m.opts.Router.SetPolicy(a.Name, p)
		}
		if !slices.Equal(seen.hosts, hosts) {
			m.opts.Router.SetHosts(a.Name, hosts)
		}
		m.routed[a.Name] = routed{policy: string(pj), hosts: hosts}
	}
	for app := range m.routed {
		if now[app] {
			continue
		}
		delete(m.routed, app)
		m.opts.Router.RemoveApp(app)
		m.mu.Lock()
		old := slices.Concat(m.live[app], m.sick[app])
		delete(m.live, app)
		delete(m.sick, app)
		m.mu.Unlock()
		m.spawn("removing "+app, func() { m.stopAll(app, old, settings.Settings{}.WithDefaults().StopGrace) })
	}
}

// routed is what this node's router was last given of an app.
type routed struct {
	policy string
	hosts  []string
}

// underRollout lists the apps with a rollout under way.
func (m *Manager) underRollout() (map[string]bool, error) {
	rs, err := m.opts.Store.Rollouts(m.ctx)
	if err != nil {
		return nil, err
	}
	under := make(map[string]bool, len(rs))
	for _, r := range rs {
		under[r.App] = true
	}
	return under, nil
}

// stillLive reports whether a's live release is still a.CurrentRelease,
// with no rollout under way (read in converge's order).
func (m *Manager) stillLive(a store.App) bool {
	under, err := m.underRollout()
	if err != nil || under[a.Name] {
		return false
	}
	cur, err := m.opts.Store.App(m.ctx, a.Name)
	return err == nil && cur.CurrentRelease == a.CurrentRelease
}
