package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/probe"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// tracker records a deployment's progress in the store and the app's log.
type tracker struct {
	m  *Manager
	mu sync.Mutex // guards d; warmups report from several goroutines
	d  store.Deployment
}

// step marks the start of a step.
func (t *tracker) step(step, format string, args ...any) { t.event(step, fmt.Sprintf(format, args...)) }

// progress adds a message within the current step.
func (t *tracker) progress(format string, args ...any) { t.event("", fmt.Sprintf(format, args...)) }

func (t *tracker) event(step, msg string) {
	if t == nil { // a replacement outside any deployment
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.d.AddEvent(step, msg)
	t.m.opts.Logs.Platform(t.d.App, t.d.Release, "Deployment %d: %s", t.d.ID, msg)
	t.saveLocked()
}

func (t *tracker) saveLocked() {
	if err := t.m.opts.Store.PutDeployment(context0(), t.d); err != nil {
		t.m.logger.Error("saving deployment", "app", t.d.App, "deployment", t.d.ID, "err", err)
	}
}

// finish records the outcome: err nil for success.
func (t *tracker) finish(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.d.Finished = time.Now().UTC()
	switch {
	case err == nil:
		t.d.State = store.StateSucceeded
		t.d.AddEvent(store.StepSucceeded, fmt.Sprintf("Deployment succeeded in %s", t.d.Finished.Sub(t.d.Started).Round(100*time.Millisecond)))
	case errors.Is(err, ErrCancelled), errors.Is(err, ErrShuttingDown):
		t.d.State, t.d.Reason = store.StateCancelled, store.Truncate(err.Error(), store.MaxEventBytes)
		t.d.AddEvent(store.StepFailed, "Deployment cancelled; the previous release keeps serving")
	default:
		t.d.State, t.d.Reason = store.StateFailed, store.Truncate(err.Error(), store.MaxEventBytes)
		t.d.AddEvent(store.StepFailed, "Deployment failed: "+err.Error())
	}
	t.m.observeDeployment(t.d.App, t.d.Kind, t.d.State, t.d.Finished.Sub(t.d.Started))
	last := t.d.Events[len(t.d.Events)-1]
	t.m.opts.Logs.Platform(t.d.App, t.d.Release, "Deployment %d: %s", t.d.ID, last.Message)
	t.saveLocked()
}

// run takes p live and records the outcome; it always releases the lock.
// expected is the router's Expect for this deployment.
func (m *Manager) run(ctx context.Context, cancel context.CancelCauseFunc, t *tracker, p plan, expected func()) {
	rel := p.rel
	defer m.wg.Done()
	defer expected()
	defer cancel(nil)
	var err error
	if perr := safego.Run(m.logger, "deployment of "+rel.App, func() { err = m.rollout(ctx, t, p) }); perr != nil {
		err = fmt.Errorf("internal error: %w", perr)
	}
	m.mu.Lock()
	delete(m.cancels, rel.App)
	m.mu.Unlock()
	// The lock goes before the outcome is written: whoever sees the outcome
	// can start the next change at once.
	if err := m.opts.Store.Unlock(context0(), rel.App, t.d.ID); err != nil {
		// The lock hangs on the daemon's lease and is cleared at start, so
		// it cannot outlive this daemon even if this write failed.
		m.logger.Error("releasing deployment lock", "app", rel.App, "err", err)
	}
	t.finish(err)
	if err == nil && p.rel.Deployment == t.d.ID {
		m.prune(context0())
	}
}

// rollout is a deployment's steps. Until the switch, any failure stops the
// new instances and leaves the old ones serving.
func (m *Manager) rollout(ctx context.Context, t *tracker, p plan) error {
	if m.clustered() {
		return m.clusterRollout(ctx, t, p)
	}
	rel := p.rel
	s := rel.Settings.WithDefaults()
	live := len(m.liveInstances(rel.App))
	add := p.instances
	if p.scale {
		add = max(0, p.instances-live)
	}
	var started []*instance
	fail := func(err error) error {
		m.stopAll(rel.App, started, s.StopGrace)
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return cause
		}
		return err
	}
	if add > 0 {
		t.step(store.StepStarting, "Starting %d instance(s) of %s", add, rel.Version())
		if err := m.prepare(rel); err != nil {
			return err
		}
		base := 0
		if p.scale {
			base = live
		}
		for i := range add {
			inst, err := m.startInstance(rel, base+i)
			if err != nil {
				return fail(err)
			}
			started = append(started, inst)
		}
		t.step(store.StepWarmingUp, "Warming up: GET %s until it answers %s, for at most %ds", s.WarmupPath, s.WarmupStatus, s.StartTimeLimit)
		if err := m.warmAll(ctx, t, rel, started); err != nil {
			return fail(err)
		}
	}
	next, old, err := m.switchTo(ctx, p, started)
	if err != nil {
		return fail(err)
	}
	t.step(store.StepSwitched, "Switched traffic to %d instance(s) of %s", next, rel.Version())
	m.goLive(started, s)
	if !p.scale {
		if err := m.setCurrent(rel); err != nil {
			m.logger.Error("recording current release", "app", rel.App, "err", err)
		}
	}
	m.retire(t, rel.App, old)
	return nil
}

func (m *Manager) liveInstances(app string) []*instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[app]
}

// prepare checks that this node can run rel (launchOf), lays out the
// release directory as its stack needs and the app's storage directory,
// and under user isolation lets the app's user reach them.
func (m *Manager) prepare(rel store.Release) error {
	if _, err := m.launchOf(rel); err != nil {
		return err
	}
	if err := m.opts.Artifacts.Prepare(rel.Artifact, m.releaseDir(rel.App, rel.Number), runtime.Layout(StackOf(rel))); err != nil {
		return fmt.Errorf("preparing release directory: %w", err)
	}
	if m.user() {
		_, err := m.openLayout(rel.App, rel.Number)
		return err
	}
	return os.MkdirAll(m.storageDir(rel.App), 0o700)
}

// switchTo swaps app's backend set in one step, unless the deployment was
// cancelled first. A full deployment replaces every live instance with
// started; a scale adds started to the live ones (see scaleSetLocked).
// It returns the size of the new set and the instances it replaced.
func (m *Manager) switchTo(ctx context.Context, p plan, started []*instance) (int, []*instance, error) {
	app := p.rel.App
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil { // Cancel holds mu too: no cancel slips in after this check
		return 0, nil, context.Cause(ctx)
	}
	delete(m.cancels, app)
	var next, old []*instance
	if p.scale {
		next, old = m.scaleSetLocked(app, p.instances, started)
	} else {
		// The new release replaces the old one's instances that are being
		// replaced, too: they are retired with the rest.
		next, old = started, slices.Concat(m.live[app], m.sick[app])
		delete(m.sick, app)
	}
	s := p.rel.Settings.WithDefaults()
	m.publishLocked(app, next, &s)
	return len(next), old, nil
}

// scaleSetLocked splits app's instances for a scale to n with started
// added: the live set is as many live instances as n leaves room for, then
// started; if that falls short (instances exited since the count), sick
// instances stay to be replaced, as many as are missing (their
// replacements join the set). The rest are retired: the set is never
// larger than n, whatever was replaced meanwhile. Call with m.mu held.
func (m *Manager) scaleSetLocked(app string, n int, started []*instance) (next, old []*instance) {
	live, sick := m.live[app], m.sick[app]
	keep := min(len(live), max(0, n-len(started)))
	next = slices.Concat(live[:keep], started)
	stay := min(len(sick), max(0, n-len(next)))
	m.sick[app] = sick[:stay:stay]
	return next, slices.Concat(live[keep:], sick[stay:])
}

// retire drains the replaced instances, then stops them. It is not
// cancellable: the new release is already live.
func (m *Manager) retire(t *tracker, app string, old []*instance) {
	if len(old) == 0 {
		t.step(store.StepDraining, "No old instances to drain")
		t.step(store.StepOldStopped, "No old instances to stop")
		return
	}
	s := m.settingsOf(app, old[0].release)
	t.step(store.StepDraining, "Draining %d old instance(s), for at most %ds", len(old), s.DrainTimeout)
	if left := router.Drain(m.ctx, backends(old), secs(s.DrainTimeout)); left > 0 {
		t.progress("Drain timeout passed with %d request(s) still in flight; stopping anyway", left)
	}
	m.stopAll(app, old, s.StopGrace)
	t.step(store.StepOldStopped, "Stopped %d old instance(s)", len(old))
}

// settingsOf returns the settings of release n of app, or the defaults.
func (m *Manager) settingsOf(app string, n int) settings.Settings {
	rel, err := m.opts.Store.Release(context0(), app, n)
	if err != nil {
		return settings.Settings{}.WithDefaults()
	}
	return rel.Settings.WithDefaults()
}

func (m *Manager) setCurrent(rel store.Release) error {
	ctx := context0()
	a, err := m.opts.Store.App(ctx, rel.App)
	if err != nil {
		return err
	}
	a.CurrentRelease = rel.Number
	return m.opts.Store.PutApp(ctx, a)
}

// warmAll warms every instance at once; the first failure ends them all.
func (m *Manager) warmAll(ctx context.Context, t *tracker, rel store.Release, insts []*instance) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make(chan error, len(insts))
	for _, inst := range insts {
		go func() {
			var err error
			if perr := safego.Run(m.logger, "warmup of "+inst.ID, func() { err = m.warm(ctx, t, rel, inst) }); perr != nil {
				err = perr
			}
			errs <- err
		}()
	}
	var first error
	for range insts {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel(err)
		}
	}
	return first
}

func (m *Manager) warm(ctx context.Context, t *tracker, rel store.Release, inst *instance) error {
	s := rel.Settings.WithDefaults()
	accept, err := settings.ParseStatusSet(s.WarmupStatus)
	if err != nil {
		return err
	}
	start := time.Now()
	err = probe.Warmup(ctx, probe.WarmupOptions{
		URL:         fmt.Sprintf("http://%s%s", inst.backend.Addr, s.WarmupPath),
		Host:        m.defaultHost(rel.App),
		Accept:      accept,
		Limit:       secs(s.StartTimeLimit),
		ReportEvery: m.opts.WarmupReportEvery,
		Report: func(elapsed time.Duration) {
			t.progress("Waiting for response to warmup request for instance %s. Elapsed time = %.1f sec", inst.ID, elapsed.Seconds())
		},
		Exited: inst.Done(),
	})
	switch {
	case errors.Is(err, probe.ErrExited):
		inst.WaitOutput() // its last words may still be on their way from its output files
		return fmt.Errorf("instance %s exited while warming up (%s); its last output:\n%s", inst.ID, inst.Exit(), indent(inst.LastLines()))
	case errors.Is(err, probe.ErrTimeout):
		return fmt.Errorf("instance %s did not become ready: %w; raise the start time limit if the app needs longer, or check the warmup path", inst.ID, err)
	case err != nil:
		return err
	}
	m.metrics.warmup.WithLabelValues(rel.App).Observe(time.Since(start).Seconds())
	t.progress("Instance %s is ready after %.1f sec", inst.ID, time.Since(start).Seconds())
	return nil
}

func indent(lines []string) string {
	if len(lines) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
