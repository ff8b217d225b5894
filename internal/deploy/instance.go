package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/artifact"
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

// defaultCommands are the stacks' startup commands, run in the release
// directory. "exec" makes the JVM the process group leader.
var defaultCommands = map[string]string{
	artifact.KindJar: "exec java $JAVA_OPTS -jar app.jar --server.port=$PORT",
	artifact.KindWar: "exec java $JAVA_OPTS -jar app.war --server.port=$PORT",
}

// Command is the startup command of a release: its own, else its stack's.
func Command(rel store.Release) (string, error) {
	if rel.Settings.Command != "" {
		return rel.Settings.Command, nil
	}
	if c, ok := defaultCommands[rel.Artifact.Kind]; ok {
		return c, nil
	}
	return "", fmt.Errorf("%w: a %s artifact has no default startup command; set one in the app's settings (\"command\")", ErrNoCommand, rel.Artifact.Kind)
}

// inheritedEnv are the daemon's variables an instance sees; nothing else of
// the daemon's environment (which may hold credentials) reaches apps.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME"}

// environment builds an instance's environment. Order is precedence: platform
// defaults, then the app's settings, then the bindings the platform needs.
func (m *Manager) environment(rel store.Release, id string, index, port int) []string {
	var env []string
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	host := m.Hosts(rel.App)[0]
	env = append(env,
		"JAVA_OPTS=",
		"WEBSITE_SITE_NAME="+rel.App,
		"WEBSITE_HOSTNAME="+host,
	)
	for k, v := range rel.Settings.Env {
		env = append(env, k+"="+v)
	}
	p := strconv.Itoa(port)
	return append(env,
		"PORT="+p,
		"SERVER_PORT="+p,
		"SERVER_ADDRESS=127.0.0.1",
		"SLIPWAY_APP="+rel.App,
		"SLIPWAY_RELEASE="+rel.Version(),
		"SLIPWAY_INSTANCE_ID="+id,
		"SLIPWAY_STORAGE="+m.storageDir(rel.App),
		"WEBSITE_INSTANCE_ID="+id,
		"WEBSITE_ROLE_INSTANCE_ID="+strconv.Itoa(index),
	)
}

func newInstanceID(rel store.Release) string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%s-%s-%s", rel.App, rel.Version(), hex.EncodeToString(b))
}

// spec is the runtime spec of instance id of app; Command and Env are
// only needed to start it, not to adopt it.
func (m *Manager) spec(app string, release, port int, id string) runtime.Spec {
	return runtime.Spec{
		ID: id, Port: port, Dir: m.releaseDir(app, release), LogDir: filepath.Join(m.appDir(app), "instances"), Logger: m.logger,
		Output: func(stream, line string) {
			m.opts.Logs.Write(app, logs.Line{Source: id, Stream: stream, Release: release, Text: line})
		},
	}
}

// startInstance starts one instance of rel and records it in the store.
func (m *Manager) startInstance(rel store.Release, index int) (*instance, error) {
	cmd, err := Command(rel)
	if err != nil {
		return nil, err
	}
	port, err := runtime.FreePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	id := newInstanceID(rel)
	spec := m.spec(rel.App, rel.Number, port, id)
	spec.Command, spec.Env = cmd, m.environment(rel, id, index, port)
	ri, err := runtime.Start(spec)
	if err != nil {
		return nil, err
	}
	inst := m.newInstance(ri, rel.App, rel.Number, index, spec)
	rec := store.InstanceRecord{ID: id, App: rel.App, Release: rel.Number, PID: ri.PID, StartTicks: ri.StartTicks, Port: port}
	if err := m.opts.Store.PutInstance(context0(), rec); err != nil {
		m.logger.Error("recording instance", "instance", id, "err", err)
	}
	m.opts.Logs.Platform(rel.App, rel.Number, "Started instance %s (pid %d, port %d)", id, ri.PID, port)
	return inst, nil
}

func (m *Manager) newInstance(ri *runtime.Instance, app string, release, index int, spec runtime.Spec) *instance {
	return &instance{Instance: ri, app: app, release: release, index: index, spec: spec, state: StateStarting,
		backend: router.NewBackend(ri.ID, fmt.Sprintf("127.0.0.1:%d", ri.Port))}
}

// stopInstance stops inst with the grace period and forgets it.
func (m *Manager) stopInstance(app string, inst *instance, grace int) {
	m.mu.Lock()
	inst.state = StateStopping
	m.mu.Unlock()
	if err := inst.Stop(secs(grace)); err != nil {
		m.logger.Error("stopping instance", "instance", inst.ID, "err", err)
	}
	inst.backend.Close()
	inst.WaitOutput()
	runtime.RemoveOutput(inst.spec)
	if err := m.opts.Store.DeleteInstance(context0(), inst.ID); err != nil {
		m.logger.Error("forgetting instance", "instance", inst.ID, "err", err)
	}
	m.opts.Logs.Platform(app, inst.release, "Stopped instance %s (%s)", inst.ID, inst.Exit())
}
