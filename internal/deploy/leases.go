package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/store"
)

// An instance's leases, and the single runner.
//
// An instance takes leases through its SLIPWAY_LEASE_URL (the lease
// package). It keeps them while it drains; they end at once when it gets
// its stop signal, or when it exits, whichever comes first; a daemon that
// dies leaves them to their TTL.
//
// The single runner lease (the single_runner option of the live
// release's settings) is one the platform holds for one instance of the
// live release, which finds the file SLIPWAY_LEASE_DIR/NAME holding the
// fencing token. The file goes at the holder's stop signal; the lease
// passes to another instance only once the holder has exited, so two
// instances never run the job at once, whatever overlaps in a swap.

// runnerCheckEvery is how often runRunners looks again without being
// woken, in case a take failed (the store was busy, or an instance held
// the name).
const runnerCheckEvery = 2 * time.Second

// runnerHold is an app's single runner lease and its holder.
type runnerHold struct {
	name  string
	inst  *instance
	token int64
}

// registerLeases returns instance id's SLIPWAY_LEASE_URL, "" without
// leases.
func (m *Manager) registerLeases(app, id string, release int) string {
	if m.opts.Leases == nil {
		return ""
	}
	return m.opts.Leases.Register(app, id, release)
}

// forgetLeases drops what instance id had for its leases: its secret and
// its lease directory. It has stopped.
func (m *Manager) forgetLeases(app, id string) {
	if m.opts.Leases != nil {
		m.opts.Leases.Forget(id)
	}
	os.RemoveAll(m.leaseDir(app, id))
}

// endLeases ends inst's leases: it got its stop signal, or it exited.
// Its single runner file goes too; the lease itself stays with it until
// it has exited (see releaseRunner).
func (m *Manager) endLeases(inst *instance) {
	if m.opts.Leases != nil {
		m.opts.Leases.Stopping(context0(), inst.app, inst.ID)
	}
	m.mu.Lock()
	h := m.runners[inst.app]
	m.mu.Unlock()
	if h != nil && h.inst == inst {
		os.Remove(filepath.Join(m.leaseDir(inst.app, inst.ID), h.name))
	}
}

// watchLeases ends inst's leases as soon as it exits, whatever it was
// doing (warming up, serving, draining), and hands the single runner
// lease on if it held it.
func (m *Manager) watchLeases(inst *instance) {
	m.spawn("leases of "+inst.ID, func() {
		select {
		case <-m.ctx.Done():
			return // a stop with --keep-instances leaves them their leases
		case <-inst.Done():
		}
		m.endLeases(inst)
		m.releaseRunner(inst)
	})
}

// setRunnerLocked records app's single runner lease name. Call with m.mu
// held.
func (m *Manager) setRunnerLocked(app, name string) {
	if name == "" {
		delete(m.runnerNames, app)
	} else {
		m.runnerNames[app] = name
	}
	if m.opts.Leases != nil {
		m.opts.Leases.SetRunner(app, name)
	}
}

// pokeRunners wakes runRunners; it never blocks, so it may be called with
// m.mu held.
func (m *Manager) pokeRunners() {
	select {
	case m.runnerPoke <- struct{}{}:
	default:
	}
}

// releaseRunner gives up the single runner lease if inst, which has
// exited, held it, and wakes runRunners to hand it on.
func (m *Manager) releaseRunner(inst *instance) {
	m.mu.Lock()
	h := m.runners[inst.app]
	if h == nil || h.inst != inst {
		m.mu.Unlock()
		return
	}
	delete(m.runners, inst.app)
	m.mu.Unlock()
	if err := m.opts.Store.DropRunner(context0(), inst.app, h.name, inst.ID); err != nil {
		m.logger.Error("giving up the single runner lease", "app", inst.app, "lease", h.name, "err", err)
	}
	os.Remove(filepath.Join(m.leaseDir(inst.app, inst.ID), h.name))
	m.opts.Logs.Platform(inst.app, inst.release, "Instance %s no longer holds the single runner lease %s", inst.ID, h.name)
	m.pokeRunners()
}

// runRunners hands out the apps' single runner leases, whenever an
// instance goes live or leaves, and every runnerCheckEvery.
func (m *Manager) runRunners() {
	tick := time.NewTicker(runnerCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.runnerPoke:
		case <-tick.C:
		}
		m.mu.Lock()
		apps := make([]string, 0, len(m.runnerNames)+len(m.runners))
		for app := range m.runnerNames {
			apps = append(apps, app)
		}
		for app := range m.runners {
			apps = append(apps, app)
		}
		m.mu.Unlock()
		slices.Sort(apps)
		for _, app := range slices.Compact(apps) {
			m.assignRunner(app)
		}
	}
}

// assignRunner gives app's single runner lease to an instance of its live
// release, if nobody holds it.
func (m *Manager) assignRunner(app string) {
	m.mu.Lock()
	name, h := m.runnerNames[app], m.runners[app]
	live := slices.Clone(m.live[app])
	m.mu.Unlock()
	if h != nil {
		if exited(h.inst) { // its watcher releases it at once; this is a safety net
			m.releaseRunner(h.inst)
		}
		return
	}
	if name == "" {
		return
	}
	inst := m.runnerCandidate(app, name, live)
	if inst == nil {
		return
	}
	l, err := m.opts.Store.HoldRunner(m.ctx, store.Lease{App: app, Name: name, Holder: inst.ID, Release: inst.release})
	var held *store.LeaseHeldError
	switch {
	case m.ctx.Err() != nil:
		return // shutting down
	case errors.As(err, &held) && held.Lease.Runner && !m.known(app, held.Lease.Holder):
		// Left by a holder that is gone, whose release failed to reach
		// the store: nobody holds it; the next round takes it.
		if err := m.opts.Store.DropRunner(m.ctx, app, name, held.Lease.Holder); err != nil {
			m.noteRunnerBlocked(app, name, err)
		}
		m.pokeRunners()
		return
	case err != nil:
		m.noteRunnerBlocked(app, name, err)
		return
	}
	delete(m.runnerBlocked, app)
	m.mu.Lock()
	m.runners[app] = &runnerHold{name: name, inst: inst, token: l.Token}
	m.mu.Unlock()
	for _, other := range live { // none should have it; be sure
		if other != inst {
			os.Remove(filepath.Join(m.leaseDir(app, other.ID), name))
		}
	}
	path := filepath.Join(m.leaseDir(app, inst.ID), name)
	if err := atomicfile.WriteFile(path, []byte(strconv.FormatInt(l.Token, 10)+"\n"), 0o644); err != nil {
		m.logger.Error("writing the single runner file", "app", app, "instance", inst.ID, "err", err)
	}
	m.opts.Logs.Platform(app, inst.release, "Instance %s holds the single runner lease %s (fencing token %d)", inst.ID, name, l.Token)
	if exited(inst) {
		m.releaseRunner(inst)
	}
}

// runnerCandidate picks the instance to hold app's single runner lease
// name: one of live that has its file already (it held the lease under
// an earlier daemon, and still runs), else the first ready one that has a
// lease directory (one started by a Slipway without leases has none).
func (m *Manager) runnerCandidate(app, name string, live []*instance) *instance {
	for _, inst := range live {
		if _, err := os.Stat(filepath.Join(m.leaseDir(app, inst.ID), name)); err == nil && !exited(inst) {
			return inst
		}
	}
	m.mu.Lock()
	ready := slices.DeleteFunc(slices.Clone(live), func(i *instance) bool { return i.state != StateReady || exited(i) })
	m.mu.Unlock()
	for _, inst := range ready {
		if _, err := os.Stat(m.leaseDir(app, inst.ID)); err == nil {
			return inst
		}
	}
	return nil
}

// noteRunnerBlocked says in the app's log why its single runner lease
// cannot be taken, once per reason: runRunners tries again.
func (m *Manager) noteRunnerBlocked(app, name string, err error) {
	msg := err.Error()
	var held *store.LeaseHeldError
	if errors.As(err, &held) && !held.Lease.Runner {
		msg = fmt.Sprintf("instance %s holds it through its SLIPWAY_LEASE_URL; the platform takes it once that lease ends", held.Lease.Holder)
	}
	if m.runnerBlocked[app] == msg {
		return
	}
	m.runnerBlocked[app] = msg
	m.opts.Logs.Platform(app, 0, "The single runner lease %s cannot be taken yet: %s", name, msg)
}

// known reports whether id is an instance of app that this manager runs:
// serving, or being replaced or retired.
func (m *Manager) known(app, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.runners[app]; h != nil && h.inst.ID == id {
		return true
	}
	is := func(i *instance) bool { return i.ID == id }
	return slices.ContainsFunc(m.live[app], is) || slices.ContainsFunc(m.sick[app], is)
}

func exited(inst *instance) bool {
	select {
	case <-inst.Done():
		return true
	default:
		return false
	}
}
