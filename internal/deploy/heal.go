package deploy

import (
	"fmt"
	"slices"
	"time"

	"github.com/slipway-dev/slipway/internal/probe"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/settings"
)

const (
	// maxBackoff caps the wait between restarts of a crashing instance.
	maxBackoff = 60 * time.Second
	// stableAfter is how long an instance must have served for its crash
	// to count as a first one again.
	stableAfter = 5 * time.Minute
	// crashLoopAfter restarts in a row, an app is reported crash-looping.
	crashLoopAfter = 3
)

// backoff is the wait before restart number n (1-based) of a slot: none for
// the first, then 1 s, 2 s, 4 s, … up to maxBackoff.
func backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(time.Second<<min(n-2, 16), maxBackoff)
}

// goLive marks instances as serving and starts, for each, a goroutine that
// replaces it when it exits and one that checks its health.
func (m *Manager) goLive(insts []*instance, s settings.Settings) {
	m.mu.Lock()
	for _, inst := range insts {
		inst.state, inst.liveSince = StateReady, time.Now()
	}
	m.mu.Unlock()
	for _, inst := range insts {
		m.supervise("exit watcher of "+inst.ID, func() { m.watchExit(inst) })
		m.supervise("health checks of "+inst.ID, func() { m.monitor(inst, s) })
	}
}

// watchExit replaces inst if it exits while it serves.
func (m *Manager) watchExit(inst *instance) {
	select {
	case <-m.ctx.Done():
		return
	case <-inst.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.live[inst.app], inst) {
		return // retired on purpose, or already being replaced
	}
	// Out of rotation at once: requests go to the others, or wait for the
	// replacement (see router hold), rather than to a dead port.
	// Held requests wait for the replacement from the moment the instance
	// leaves rotation.
	expected := m.opts.Router.Expect(inst.app)
	m.publishLocked(inst.app, without(m.live[inst.app], inst), nil)
	// Out of the live set, inst is no longer this watcher's to find when
	// it starts again after a panic: its replacement starts however the
	// rest ends, or the app would run an instance short for good, with
	// its requests held for a replacement that never comes.
	defer m.startReplacing(inst, expected)
	inst.state = StateExited
	m.metrics.restarts.WithLabelValues(inst.app, "exited").Inc()
	m.opts.Logs.Platform(inst.app, inst.release, "Instance %s exited unexpectedly (%s); replacing it", inst.ID, inst.Exit())
}

// monitor checks inst's health every interval while it serves, and has it
// replaced after threshold failures in a row.
func (m *Manager) monitor(inst *instance, s settings.Settings) {
	accept, _ := settings.ParseStatusSet(s.WarmupStatus)
	url := fmt.Sprintf("http://%s%s", inst.backend.Addr, s.HealthPath)
	tick := time.NewTicker(secs(s.HealthInterval))
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-inst.Done():
			return
		case <-tick.C:
		}
		err := probe.Check(m.ctx, url, m.defaultHost(inst.app), accept, secs(s.HealthTimeout))
		if m.ctx.Err() != nil {
			return
		}
		fails, goOn := m.noteHealth(inst, s, err)
		if !goOn {
			return
		}
		if fails > 0 {
			m.opts.Logs.Platform(inst.app, inst.release, "Health check %d of %d failed for instance %s: %v", fails, s.HealthThreshold, inst.ID, err)
		}
	}
}

// noteHealth records the outcome err of a health check of inst, and has
// it replaced at the threshold. It returns the failures in a row, and
// whether the checks go on: not once inst has left the live set or is
// being replaced. The lock is released however it ends, a panic included,
// or supervise would restart the checks into a manager locked for ever.
func (m *Manager) noteHealth(inst *instance, s settings.Settings, err error) (fails int, goOn bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.live[inst.app], inst) {
		return 0, false
	}
	if err == nil {
		inst.healthFails = 0
		return 0, true
	}
	inst.healthFails++
	if inst.healthFails >= s.HealthThreshold {
		m.markUnhealthy(inst, err)
		return inst.healthFails, false
	}
	return inst.healthFails, true
}

// markUnhealthy takes inst out of rotation if another ready instance
// serves, and has it replaced. Call with m.mu held.
func (m *Manager) markUnhealthy(inst *instance, err error) {
	inst.state = StateUnhealthy
	m.metrics.restarts.WithLabelValues(inst.app, "unhealthy").Inc()
	others := 0
	for _, x := range m.live[inst.app] {
		if x != inst && x.state == StateReady {
			others++
		}
	}
	where := "it keeps serving, as the only instance, until its replacement is ready"
	expected := m.opts.Router.Expect(inst.app)
	// As in watchExit: the replacement starts however the rest ends, a
	// panic included; the health checks that start again after it no
	// longer look at an instance out of rotation.
	defer m.startReplacing(inst, expected)
	if others > 0 {
		m.publishLocked(inst.app, without(m.live[inst.app], inst), nil)
		m.sick[inst.app] = append(m.sick[inst.app], inst)
		where = "out of rotation"
	}
	m.opts.Logs.Platform(inst.app, inst.release, "Instance %s is unhealthy (%v); %s; replacing it", inst.ID, err, where)
}

// startReplacing starts replacing sick in the background; expected is
// the router's Expect for the replacement, which calls it when done. Call
// with m.mu held.
func (m *Manager) startReplacing(sick *instance, expected func()) {
	if sick.replacing {
		expected()
		return
	}
	sick.replacing = true
	if !slices.Contains(m.sick[sick.app], sick) && !slices.Contains(m.live[sick.app], sick) {
		m.sick[sick.app] = append(m.sick[sick.app], sick)
	}
	m.spawn("replacement of "+sick.ID, func() { m.replace(sick, expected) })
}

// replace starts and warms up a new instance of sick's release, with
// backoff between failed attempts, and swaps it in for sick; then it
// retires sick. It gives up once a deployment has replaced sick's release,
// or the app is gone.
func (m *Manager) replace(sick *instance, expected func()) {
	defer expected()
	restarts := sick.restarts
	if !sick.liveSince.IsZero() && time.Since(sick.liveSince) > stableAfter {
		restarts = 0
	}
	for {
		restarts++
		if !m.waitToRestart(sick, restarts) {
			return
		}
		ni, err := m.startReplacement(sick, restarts)
		if err != nil {
			m.opts.Logs.Platform(sick.app, sick.release, "Replacing instance %s failed: %v", sick.ID, err)
			continue
		}
		if m.swapIn(sick, ni) {
			break
		}
		m.stopInstance(sick.app, ni, 0)
		return
	}
	s := m.settingsOf(sick.app, sick.release)
	// Done serving: the sick one left rotation in swapIn, if not before.
	m.retireOne(sick, s)
}

// waitToRestart sleeps the backoff for restart n of sick's slot, noting it
// for status, and reports whether sick still wants replacing.
func (m *Manager) waitToRestart(sick *instance, n int) bool {
	delay := backoff(n)
	if m.noteRestart(sick, n, delay) {
		m.opts.Logs.Platform(sick.app, sick.release, "App %s is crash-looping: restart %d of instance slot %d in %s", sick.app, n, sick.index, delay)
	}
	select {
	case <-m.ctx.Done():
		return false
	case <-time.After(delay):
	}
	return m.wanted(sick)
}

// noteRestart notes restart n of sick's slot for status, and reports
// whether the app is crash-looping.
func (m *Manager) noteRestart(sick *instance, n int, delay time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	sick.note = fmt.Sprintf("restart %d", n)
	if n > crashLoopAfter {
		sick.note = fmt.Sprintf("crash-looping: restart %d in %s", n, delay)
	}
	return n > crashLoopAfter
}

// wanted reports whether sick is still to be replaced: no deployment has
// replaced its release since, and the app still exists.
func (m *Manager) wanted(sick *instance) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.sick[sick.app], sick) || slices.Contains(m.live[sick.app], sick)
}

func (m *Manager) startReplacement(sick *instance, restarts int) (*instance, error) {
	rel, err := m.opts.Store.Release(m.ctx, sick.app, sick.release)
	if err != nil {
		return nil, err
	}
	ni, err := m.startInstance(rel, sick.index)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	ni.restarts = restarts
	m.mu.Unlock()
	if err := m.warm(m.ctx, nil, rel, ni); err != nil {
		m.stopInstance(sick.app, ni, 0)
		return nil, err
	}
	return ni, nil
}

// swapIn puts ni in sick's place in rotation, if sick is still wanted.
func (m *Manager) swapIn(sick, ni *instance) bool {
	if !m.putInPlace(sick, ni) {
		return false
	}
	m.opts.Logs.Platform(sick.app, sick.release, "Instance %s replaces %s", ni.ID, sick.ID)
	m.goLive([]*instance{ni}, m.settingsOf(sick.app, sick.release))
	return true
}

// putInPlace puts ni in sick's place in the live set, if sick is still in
// it or waiting to be replaced.
func (m *Manager) putInPlace(sick, ni *instance) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := slices.Clone(m.live[sick.app])
	i := slices.Index(live, sick)
	switch {
	case i >= 0:
		live[i] = ni
	case slices.Contains(m.sick[sick.app], sick):
		live = append(live, ni)
	default:
		return false
	}
	m.sick[sick.app] = without(m.sick[sick.app], sick)
	m.publishLocked(sick.app, live, nil)
	return true
}

// retireOne drains inst, which has left rotation, and stops it.
func (m *Manager) retireOne(inst *instance, s settings.Settings) {
	router.Drain(m.ctx, []*router.Backend{inst.backend}, secs(s.DrainTimeout))
	m.stopInstance(inst.app, inst, s.StopGrace)
}
