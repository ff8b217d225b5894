package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/store"
)

// Instance states, as status shows them.
const (
	StateStarting  = "starting"  // warming up, not in rotation yet
	StateReady     = "ready"     // in rotation, healthy
	StateUnhealthy = "unhealthy" // failed its health checks; being replaced
	StateExited    = "exited"    // exited on its own; being replaced
	StateStopping  = "stopping"  // retired: draining or stopping
)

// instance is a running copy of a release, with its router backend. The
// fields below spec are guarded by Manager.mu.
type instance struct {
	*runtime.Instance
	app     string
	release int
	index   int
	spec    runtime.Spec
	backend *router.Backend

	state       string
	note        string    // what is being done about it, for status
	restarts    int       // how many times this slot was restarted in a row
	liveSince   time.Time // when it entered rotation
	healthFails int
	replacing   bool // a replacement is under way
}

// inheritedEnv are the daemon's variables an instance sees; nothing else of
// the daemon's environment (which may hold credentials) reaches apps.
// TMPDIR is the instance's own.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "JAVA_HOME"}

// environment builds an instance's environment. Order is precedence: platform
// defaults, then the app's settings, then the bindings the platform needs.
// The JVM takes its temp directory from java.io.tmpdir, not TMPDIR: it is
// given in JAVA_TOOL_OPTIONS, before the app's own, which may override it.
func (m *Manager) environment(rel store.Release, id string, index, port int, leaseURL string) []string {
	var env []string
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	host := m.defaultHost(rel.App)
	env = append(env,
		"JAVA_OPTS=",
		"WEBSITE_SITE_NAME="+rel.App,
		"WEBSITE_HOSTNAME="+host,
	)
	for k, v := range rel.Settings.Env {
		env = append(env, k+"="+v)
	}
	p := strconv.Itoa(port)
	tmp := m.tmpDir(rel.App, id)
	javaTool := "-Djava.io.tmpdir=" + tmp
	if own := rel.Settings.Env["JAVA_TOOL_OPTIONS"]; own != "" {
		javaTool += " " + own
	}
	return append(env,
		"TMPDIR="+tmp,
		"JAVA_TOOL_OPTIONS="+javaTool,
		"PORT="+p,
		"SERVER_PORT="+p,
		"SERVER_ADDRESS=127.0.0.1",
		"SLIPWAY_APP="+rel.App,
		"SLIPWAY_RELEASE="+rel.Version(),
		"SLIPWAY_INSTANCE_ID="+id,
		"SLIPWAY_STORAGE="+m.storageDir(rel.App),
		"WEBSITE_INSTANCE_ID="+id,
		"WEBSITE_ROLE_INSTANCE_ID="+strconv.Itoa(index),
		"SLIPWAY_LEASE_DIR="+m.leaseDir(rel.App, id),
		"SLIPWAY_LEASE_URL="+leaseURL,
	)
}

func newInstanceID(rel store.Release) string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%s-%s-%s", rel.App, rel.Version(), hex.EncodeToString(b))
}

// spec is the runtime spec of instance id of app; Command, Env and Sandbox
// are only needed to start it, not to adopt it. Each of its output files
// may hold a quarter of the log quota unread; what they hold counts
// against the quota (the daemon's logs.Options.Beside), so the app's log
// files leave them room.
func (m *Manager) spec(app string, release, port int, id string) runtime.Spec {
	return runtime.Spec{
		ID: id, Port: port, Dir: m.releaseDir(app, release), LogDir: OutputDir(m.opts.DataDir, app), Logger: m.logger,
		MaxUnread: m.opts.Logs.Quota() / 4,
		Output: func(stream, line string) {
			m.opts.Logs.Write(app, logs.Line{Source: id, Stream: stream, Release: release, Text: line})
		},
	}
}

// startInstance starts one instance of rel and records it in the store.
func (m *Manager) startInstance(rel store.Release, index int) (*instance, error) {
	l, err := m.launchOf(rel)
	if err != nil {
		return nil, err
	}
	port, err := runtime.FreePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	id := newInstanceID(rel)
	uid, err := m.reachable(rel)
	if err != nil {
		return nil, err
	}
	if _, err := m.makeTmp(rel.App, id, uid); err != nil {
		return nil, err
	}
	if err := m.makeLeaseDir(rel.App, id, uid); err != nil {
		os.RemoveAll(m.tmpDir(rel.App, id))
		return nil, err
	}
	if l.tomcat != nil {
		if err := m.makeCatalinaBase(l, rel, id, port, uid); err != nil {
			os.RemoveAll(m.tmpDir(rel.App, id))
			return nil, err
		}
	}
	spec := m.spec(rel.App, rel.Number, port, id)
	spec.Command = l.command
	spec.Env = l.env(m.environment(rel, id, index, port, m.registerLeases(rel.App, id, rel.Number)), m.catalinaBase(rel.App, id))
	spec.Sandbox = m.sandbox(rel.App, rel.Number, id, uid)
	if l.jdk != nil && spec.Sandbox.Mode == runtime.IsolationLandlock {
		spec.Sandbox.ReadOnly = append(spec.Sandbox.ReadOnly, l.jdk.Home)
	}
	if m.opts.Cgroups != nil {
		spec.Cgroup = m.opts.Cgroups.Path(id)
	}
	ri, err := runtime.Start(spec)
	if err != nil {
		m.forgetLeases(rel.App, id)
		os.RemoveAll(m.tmpDir(rel.App, id))
		return nil, err
	}
	inst := m.newInstance(ri, rel.App, rel.Number, index, spec)
	m.watchLeases(inst)
	rec := store.InstanceRecord{ID: id, App: rel.App, Release: rel.Number, PID: ri.PID, StartTicks: ri.StartTicks, Port: port, Cgroup: ri.Cgroup}
	if err := m.opts.Store.PutInstance(context0(), rec); err != nil {
		m.logger.Error("recording instance", "instance", id, "err", err)
	}
	m.opts.Logs.Platform(rel.App, rel.Number, "Started instance %s (pid %d, port %d) on %s", id, ri.PID, port, l)
	return inst, nil
}

// reachable returns the uid rel's instances run as under user isolation,
// after making sure they can reach their release directory: a release
// laid out before (by a daemon with another isolation) is opened to them.
func (m *Manager) reachable(rel store.Release) (uint32, error) {
	if !m.user() {
		return 0, nil
	}
	uid, err := m.appUID(rel.App)
	if err != nil {
		return 0, err
	}
	if fi, err := os.Stat(m.releaseDir(rel.App, rel.Number)); err == nil && fi.Sys().(*syscall.Stat_t).Gid == uid {
		return uid, nil
	}
	return m.openLayout(rel.App, rel.Number)
}

func (m *Manager) newInstance(ri *runtime.Instance, app string, release, index int, spec runtime.Spec) *instance {
	return &instance{Instance: ri, app: app, release: release, index: index, spec: spec, state: StateStarting,
		backend: router.NewBackend(ri.ID, fmt.Sprintf("127.0.0.1:%d", ri.Port))}
}

// stopInstance stops inst with the grace period and forgets it. Its
// leases end with its stop signal (it kept them while it drained); the
// single runner lease goes to another instance once it has exited.
func (m *Manager) stopInstance(app string, inst *instance, grace int) {
	m.mu.Lock()
	inst.state = StateStopping
	m.mu.Unlock()
	m.endLeases(inst)
	if err := inst.Stop(secs(grace)); err != nil {
		m.logger.Error("stopping instance", "instance", inst.ID, "err", err)
	}
	m.releaseRunner(inst)
	m.forgetLeases(app, inst.ID)
	inst.backend.Close()
	inst.WaitOutput()
	runtime.RemoveOutput(inst.spec)
	os.RemoveAll(m.tmpDir(app, inst.ID))
	if err := m.opts.Store.DeleteInstance(context0(), inst.ID); err != nil {
		m.logger.Error("forgetting instance", "instance", inst.ID, "err", err)
	}
	m.opts.Logs.Platform(app, inst.release, "Stopped instance %s (%s)", inst.ID, inst.Exit())
}
