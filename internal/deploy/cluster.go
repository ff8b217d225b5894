package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// The cluster side of the manager. On a node of a cluster, the elected
// coordinator's manager runs every deployment as a rollout (see
// store.Rollout): each node's manager follows it with instances of its
// own: it fetches the artifact, starts and warms up the release (phase
// warm); when every node is warm, each one swaps its router's set and
// drains its old instances (phase swap); if one fails, every one stops
// what it started (phase abort) and the old release keeps serving.

// Timings of a rollout.
const (
	// followEvery is how often a node looks for rollouts, and the
	// coordinator for the nodes' reports: it bounds the switch window.
	followEvery = 50 * time.Millisecond
	// fetchAllowance is added to the start time limit for fetching the
	// artifact from a peer.
	fetchAllowance = 2 * time.Minute
	// swapTimeout bounds the wait for every node to report its switch.
	swapTimeout = time.Minute
	// abortTimeout bounds the wait for every node to report it stopped
	// what it started.
	abortTimeout = 30 * time.Second
)

// ErrNodeFailed wraps a node's failure in a rollout.
var ErrNodeFailed = errors.New("a node failed")

// staged is this node's part in a rollout.
type staged struct {
	deployment int
	cancel     context.CancelFunc
	// Set by stage once it is over: the warm instances, or err.
	ready   bool
	err     error
	started []*instance
	// switched or aborted: the phase that came after is done.
	switched, aborted bool
}

func (m *Manager) clustered() bool { return m.opts.Clustered != nil && m.opts.Clustered() }

// followRollouts is the node's worker: it takes part in every rollout
// that names it.
func (m *Manager) followRollouts() {
	t := time.NewTicker(followEvery)
	defer t.Stop()
	var lastConverge time.Time
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		if !m.clustered() {
			continue
		}
		if time.Since(lastConverge) >= convergeEvery {
			lastConverge = time.Now()
			m.converge()
		}
		rs, err := m.opts.Store.Rollouts(m.ctx)
		if err != nil {
			continue // cut off, say: this node serves what it has
		}
		m.follow(rs)
	}
}

func (m *Manager) follow(rs []store.Rollout) {
	node := m.opts.Store.NodeName()
	m.stageMu.Lock()
	defer m.stageMu.Unlock()
	under := map[string]bool{}
	for _, r := range rs {
		if !slices.Contains(r.Nodes, node) {
			continue
		}
		under[r.App] = true
		st := m.staged[r.App]
		if st == nil || st.deployment != r.Deployment {
			if r.Phase != store.PhaseWarm {
				continue // it went on without this node; it catches up later
			}
			m.dropStagedLocked(r.App)
			ctx, cancel := context.WithCancel(m.ctx)
			st = &staged{deployment: r.Deployment, cancel: cancel}
			m.staged[r.App] = st
			m.spawn("staging "+r.App, func() { m.stage(ctx, r, st) })
			continue
		}
		switch {
		case r.Phase == store.PhaseSwap && st.ready && st.err == nil && !st.switched:
			st.switched = true
			m.swapStaged(r, st.started)
		case r.Phase == store.PhaseAbort && !st.aborted && !st.switched:
			st.aborted = true
			st.cancel()
			if st.ready {
				m.spawn("aborting "+r.App, func() { m.abortStaged(r, st.started) })
			}
		}
	}
	// A rollout that ended (a new coordinator gave it up) takes what this
	// node started for it along.
	for app, st := range m.staged {
		if !under[app] {
			if st.switched {
				// The releases this node keeps follow its switch.
				m.spawn("applying release retention", func() { m.prune(context0()) })
			}
			m.dropStagedLocked(app)
		}
	}
}

// dropStagedLocked stops what app's staged part started, unless it went
// live. Call with stageMu held.
func (m *Manager) dropStagedLocked(app string) {
	st := m.staged[app]
	if st == nil {
		return
	}
	delete(m.staged, app)
	st.cancel()
	if st.ready && !st.switched && !st.aborted {
		started := st.started
		m.spawn("dropping "+app, func() { m.stopAll(app, started, m.stopGrace(app)) })
	}
}

// stage is phase warm on this node: fetch, start, warm up.
func (m *Manager) stage(ctx context.Context, r store.Rollout, st *staged) {
	report := func(state string, err error) {
		n := store.NodeRollout{Deployment: r.Deployment, State: state, At: time.Now().UTC()}
		if err != nil {
			n.Reason = store.Truncate(err.Error(), store.MaxEventBytes)
		}
		if perr := m.opts.Store.PutNodeRollout(context0(), r.App, n); perr != nil {
			m.logger.Error("reporting on a rollout", "app", r.App, "err", perr)
		}
	}
	report(store.NodeWarming, nil)
	started, err := m.startWarm(ctx, r)
	m.stageMu.Lock()
	st.ready, st.err, st.started = true, err, started
	aborted := st.aborted
	m.stageMu.Unlock()
	switch {
	case err != nil:
		report(store.NodeFailed, err)
	case aborted:
		m.abortStaged(r, started)
	default:
		report(store.NodeWarm, nil)
	}
}

func (m *Manager) startWarm(ctx context.Context, r store.Rollout) ([]*instance, error) {
	rel, err := m.opts.Store.Release(ctx, r.App, r.Release)
	if err != nil {
		return nil, err
	}
	m.opts.Logs.Platform(r.App, rel.Number, "Deployment %d: starting %d instance(s) of %s on node %s", r.Deployment, r.Instances, rel.Version(), m.opts.Store.NodeName())
	if err := m.fetch(ctx, rel.Artifact); err != nil {
		return nil, err
	}
	if err := m.prepare(rel); err != nil {
		return nil, err
	}
	var started []*instance
	for i := range r.Instances {
		inst, err := m.startInstance(rel, i)
		if err != nil {
			m.stopAll(r.App, started, rel.Settings.WithDefaults().StopGrace)
			return nil, err
		}
		started = append(started, inst)
	}
	if err := m.warmAll(ctx, nil, rel, started); err != nil {
		m.stopAll(r.App, started, rel.Settings.WithDefaults().StopGrace)
		return nil, err
	}
	return started, nil
}

// fetch makes sure the artifact is here, copying it from a peer by its
// digest if it is not.
func (m *Manager) fetch(ctx context.Context, ref store.ArtifactRef) error {
	if f, _, err := m.opts.Artifacts.Open(ref.Digest); err == nil {
		f.Close()
		return nil
	}
	if m.opts.Fetch == nil {
		return fmt.Errorf("%w: %s", ErrArtifactGone, ref.Digest)
	}
	return m.opts.Fetch(ctx, ref.Digest)
}

// swapStaged is phase swap on this node: the started instances become
// the app's set, and the old ones drain and stop.
func (m *Manager) swapStaged(r store.Rollout, started []*instance) {
	s := m.settingsOf(r.App, r.Release)
	m.mu.Lock()
	old := slices.Concat(m.live[r.App], m.sick[r.App])
	delete(m.sick, r.App)
	m.publishLocked(r.App, started, &s)
	m.mu.Unlock()
	at := time.Now().UTC()
	m.goLive(started, s)
	m.opts.Logs.Platform(r.App, r.Release, "Deployment %d: node %s switched traffic to %d instance(s) of v%d", r.Deployment, m.opts.Store.NodeName(), len(started), r.Release)
	if err := m.opts.Store.PutNodeRollout(context0(), r.App, store.NodeRollout{Deployment: r.Deployment, State: store.NodeSwitched, At: at}); err != nil {
		m.logger.Error("reporting a switch", "app", r.App, "err", err)
	}
	m.spawn("retiring "+r.App, func() { m.retire(nil, r.App, old) })
}

func (m *Manager) abortStaged(r store.Rollout, started []*instance) {
	m.stopAll(r.App, started, m.stopGrace(r.App))
	if err := m.opts.Store.PutNodeRollout(context0(), r.App, store.NodeRollout{Deployment: r.Deployment, State: store.NodeAborted, At: time.Now().UTC()}); err != nil {
		m.logger.Error("reporting an abort", "app", r.App, "err", err)
	}
}

// clusterRollout is a deployment's steps on the coordinator: every
// node warms up, then every node swaps.
func (m *Manager) clusterRollout(ctx context.Context, t *tracker, p plan) error {
	rel := p.rel
	s := rel.Settings.WithDefaults()
	nodes, err := m.placedNodes(ctx, s.Placement)
	if err != nil {
		return err
	}
	r := store.Rollout{App: rel.App, Deployment: t.d.ID, Release: rel.Number, Instances: p.instances, Nodes: nodes,
		Phase: store.PhaseWarm, Coordinator: m.opts.Store.NodeName(), Started: time.Now().UTC()}
	if err := m.opts.Store.PutRollout(ctx, r); err != nil {
		return err
	}
	t.step(store.StepStarting, "Starting %d instance(s) of %s on each of %d node(s): %s; node %s coordinates", p.instances, rel.Version(), len(nodes), strings.Join(nodes, ", "), r.Coordinator)
	t.step(store.StepWarmingUp, "Warming up on every node: GET %s until it answers %s, for at most %ds", s.WarmupPath, s.WarmupStatus, s.StartTimeLimit)
	if _, err := m.waitNodes(ctx, t, &r, store.NodeWarm, secs(s.StartTimeLimit)+fetchAllowance); err != nil {
		m.abort(t, r)
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return cause
		}
		return err
	}
	m.mu.Lock()
	if ctx.Err() != nil { // cancelled before the swap: Cancel holds mu too
		m.mu.Unlock()
		m.abort(t, r)
		return context.Cause(ctx)
	}
	delete(m.cancels, rel.App)
	m.mu.Unlock()
	return m.finishSwap(t, r, rel)
}

// finishSwap tells every node to swap, waits for their reports, and
// makes rel the app's live release.
func (m *Manager) finishSwap(t *tracker, r store.Rollout, rel store.Release) error {
	r.Phase = store.PhaseSwap
	if err := m.opts.Store.PutRollout(context0(), r); err != nil {
		m.abort(t, r)
		return err
	}
	reports, err := m.waitNodes(m.ctx, t, &r, store.NodeSwitched, swapTimeout)
	if err != nil {
		t.progress("Not every node reported its switch: %v; they catch up to the live release", err)
	}
	t.step(store.StepSwitched, "Switched traffic to %s on %d node(s); %s", rel.Version(), len(r.Nodes), switchWindow(reports))
	if err := m.setCurrent(rel); err != nil {
		m.logger.Error("recording current release", "app", rel.App, "err", err)
	}
	if err := m.opts.Store.EndRollout(context0(), rel.App); err != nil {
		m.logger.Error("ending rollout", "app", rel.App, "err", err)
	}
	t.step(store.StepDraining, "Each node drains its old instances after its own switch, for at most %ds", rel.Settings.WithDefaults().DrainTimeout)
	t.step(store.StepOldStopped, "Each node stops its old instances once they are drained")
	return nil
}

// switchWindow says how far apart the first and the last node switched.
func switchWindow(reports map[string]store.NodeRollout) string {
	var first, last store.NodeRollout
	for _, n := range reports {
		if n.State != store.NodeSwitched {
			continue
		}
		if first.At.IsZero() || n.At.Before(first.At) {
			first = n
		}
		if n.At.After(last.At) {
			last = n
		}
	}
	if first.At.IsZero() {
		return "no node reported its switch"
	}
	return fmt.Sprintf("switch window %s (first %s, last %s)", last.At.Sub(first.At).Round(time.Millisecond), first.Node, last.Node)
}

// abort tells every node to stop what it started, and waits for them.
func (m *Manager) abort(t *tracker, r store.Rollout) {
	r.Phase = store.PhaseAbort
	if err := m.opts.Store.PutRollout(context0(), r); err != nil {
		m.logger.Error("aborting rollout", "app", r.App, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context0(), abortTimeout)
	defer cancel()
	for ctx.Err() == nil {
		reports, _ := m.opts.Store.NodeRollouts(ctx, r.App)
		live, _ := m.liveNodes(ctx)
		busy := false
		for _, n := range r.Nodes {
			st := reports[n].State
			// A node that is gone stops nothing; it drops what it started
			// when it is back (see follow).
			busy = busy || slices.Contains(live, n) && (st == store.NodeWarming || st == store.NodeWarm)
		}
		if !busy {
			break
		}
		sleep(ctx, followEvery)
	}
	if err := m.opts.Store.EndRollout(context0(), r.App); err != nil {
		m.logger.Error("ending rollout", "app", r.App, "err", err)
	}
	t.progress("Every node stopped what it started; the previous release keeps serving")
}

// waitNodes waits until every node of r is in state want; a node that
// failed fails the wait, and a node that is gone (its registration
// lapsed) is dropped from r: it catches up when it is back.
func (m *Manager) waitNodes(ctx context.Context, t *tracker, r *store.Rollout, want string, limit time.Duration) (map[string]store.NodeRollout, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	seen := map[string]string{}
	if want == store.NodeSwitched {
		for _, n := range r.Nodes {
			seen[n] = store.NodeWarm // said in the phase before
		}
	}
	for {
		reports, err := m.opts.Store.NodeRollouts(ctx, r.App)
		if err == nil {
			live, lerr := m.liveNodes(ctx)
			done := true
			for _, n := range slices.Clone(r.Nodes) {
				rep := reports[n]
				if rep.Deployment != r.Deployment {
					rep = store.NodeRollout{}
				}
				if rep.State != "" && seen[n] != rep.State {
					seen[n] = rep.State
					t.progress("Node %s: %s", n, rep.State)
				}
				switch {
				case rep.State == store.NodeFailed:
					return reports, fmt.Errorf("%w: node %s: %s", ErrNodeFailed, n, rep.Reason)
				case rep.State == want:
				case lerr == nil && !slices.Contains(live, n):
					t.progress("Node %s is gone; it catches up to the live release when it is back", n)
					r.Nodes = slices.DeleteFunc(r.Nodes, func(x string) bool { return x == n })
				default:
					done = false
				}
			}
			if done {
				return reports, nil
			}
		}
		if !sleep(ctx, followEvery) {
			if cause := context.Cause(ctx); errors.Is(cause, context.DeadlineExceeded) {
				return nil, fmt.Errorf("not every node was %s within %s", want, limit)
			}
			return nil, context.Cause(ctx)
		}
	}
}

// ErrNoPlace fails a deployment whose placement no node fits.
var ErrNoPlace = errors.New("no node of the cluster has the labels the app's placement asks for")

// placedNodes names the registered nodes whose labels fit placement.
func (m *Manager) placedNodes(ctx context.Context, placement string) ([]string, error) {
	ns, err := m.opts.Store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range ns {
		if settings.Places(placement, n.Labels) {
			out = append(out, n.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w (%s): give nodes --label, or change the app's placement", ErrNoPlace, placement)
	}
	return out, nil
}

// liveNodes names the registered nodes.
func (m *Manager) liveNodes(ctx context.Context) ([]string, error) {
	ns, err := m.opts.Store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out, nil
}

// sleep waits d, or less if ctx ends; false then.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// ErrCoordinatorLost fails a rollout whose coordinator stopped before
// every node was warm.
var ErrCoordinatorLost = errors.New("the coordinator stopped during the deployment")

// TakeOver is what a node does when it is elected coordinator: it
// finishes or fails the rollouts its predecessor left, and says so in
// their deployments, so that none stays stuck. A rollout that had not
// swapped fails (every node keeps the old release); one that had is
// finished.
func (m *Manager) TakeOver(ctx context.Context) {
	rs, err := m.opts.Store.Rollouts(ctx)
	if err != nil {
		m.logger.Error("taking over rollouts", "err", err)
		return
	}
	me := m.opts.Store.NodeName()
	for _, r := range rs {
		if r.Coordinator == me {
			continue // this node's own, still running
		}
		m.takeOver(r)
	}
	if err := m.opts.Store.ClearLocks(ctx); err != nil {
		m.logger.Error("clearing the locks of nodes that are gone", "err", err)
	}
	if err := m.failUnfinished(ctx); err != nil {
		m.logger.Error("failing deployments that nobody runs", "err", err)
	}
}

func (m *Manager) takeOver(r store.Rollout) {
	d, err := m.opts.Store.Deployment(context0(), r.App, r.Deployment)
	if err != nil {
		m.opts.Store.EndRollout(context0(), r.App)
		return
	}
	t := &tracker{m: m, d: d}
	me := m.opts.Store.NodeName()
	t.progress("The coordinator %s stopped; node %s took the deployment over", r.Coordinator, me)
	var outcome error
	switch r.Phase {
	case store.PhaseSwap:
		rel, err := m.opts.Store.Release(context0(), r.App, r.Release)
		if err == nil {
			outcome = m.finishSwap(t, r, rel)
		} else {
			outcome = err
		}
	default:
		m.abort(t, r)
		outcome = fmt.Errorf("%w (%s), before every node was warm; node %s stopped it, and the previous release keeps serving", ErrCoordinatorLost, r.Coordinator, me)
	}
	if err := m.opts.Store.Unlock(context0(), r.App, r.Deployment); err != nil {
		m.logger.Error("releasing deployment lock", "app", r.App, "err", err)
	}
	if !d.Done() {
		t.finish(outcome)
	}
}
