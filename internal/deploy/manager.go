// Package deploy is the per-app orchestrator: it takes a release live by
// starting new instances beside the old ones, warming them up, swapping the
// router's backend set, draining and retiring the old instances.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"github.com/slipway-dev/slipway/internal/access"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// Sentinel errors.
var (
	ErrNoCommand    = errors.New("no startup command")
	ErrCancelled    = errors.New("cancelled by request")
	ErrShuttingDown = errors.New("cancelled: the daemon is shutting down")
	ErrInterrupted  = errors.New("interrupted: the daemon stopped before the deployment finished; the previous release kept serving")
	ErrNotRunning   = errors.New("no deployment is running")
	ErrNothingLive  = errors.New("the app has no live release")
	ErrNoRelease    = errors.New("no such release")
	ErrArtifactGone = errors.New("the release's artifact was removed by retention")
)

// Options configures a Manager.
type Options struct {
	Store     *store.Store
	Artifacts *artifact.Store
	Router    *router.Router
	Logs      *logs.Hub
	// DataDir holds apps/<app>/releases/vN and apps/<app>/storage.
	DataDir string
	// BaseDomain: app NAME is served at NAME.BaseDomain.
	BaseDomain string
	// HTTPS says that the router has an HTTPS listener, and ACME that it
	// gets certificates there from an ACME CA: then a custom domain may be
	// added with ACME (see AddDomain).
	HTTPS, ACME bool
	// WarmupReportEvery is how often a waiting warmup is reported; 0 means
	// every 15 s.
	WarmupReportEvery time.Duration
	// KeepReleases is how many recent releases keep their artifacts and
	// directories; 0 means DefaultKeepReleases.
	KeepReleases int
	// Isolation is how instances are confined: user, landlock or none
	// (never auto: the daemon resolves it).
	Isolation runtime.Isolation
	// AppUIDBase is the first uid given to an app under user isolation;
	// DefaultAppUIDBase when 0.
	AppUIDBase uint32
	// Hidden are paths besides the data directory that no instance may
	// reach under landlock isolation: the TLS keys.
	Hidden []string
	// JDKs are the directories of JDKs named with --jdk; those in JDKDir
	// are found too. Both are looked at as each instance starts, so that
	// a JDK installed later is found.
	JDKs []string
	// JDKDir holds JDKs, a directory each; runtime.DefaultJDKDir when "".
	JDKDir string
	// Java is the java command whose JDK the API names as the node's
	// default, which an app that asks for no Java version runs on (the
	// stacks' commands run the java on PATH); "java" when "".
	Java string
	// TomcatLib holds the tomcat stack's jars; runtime.DefaultTomcatLib
	// when "".
	TomcatLib string
	// Cgroups gives each instance a cgroup of its own; nil for none.
	Cgroups *runtime.Cgroups
	// Leases gives each instance SLIPWAY_LEASE_URL, and ends an
	// instance's leases when it stops or exits; nil for none.
	Leases *lease.Service
	Logger *slog.Logger
	// Clustered reports whether the node has peers: then deployments are
	// rollouts across the nodes (see cluster.go). nil for a single node.
	Clustered func() bool
	// Fetch copies an artifact from a peer by its digest.
	Fetch func(ctx context.Context, digest string) error
	// ForwardDial reaches the cluster's forwarder (see package cluster):
	// the backend of an app whose placement leaves this node out; nil for
	// none.
	ForwardDial func(ctx context.Context) (net.Conn, error)
}

// Manager runs deployments, one per app at a time, and owns the instances
// that take traffic.
type Manager struct {
	opts    Options
	logger  *slog.Logger
	metrics *metrics

	ctx    context.Context // ends when Close is called
	cancel context.CancelFunc
	wg     sync.WaitGroup // deployments and instance watchers

	mu sync.Mutex // guards live, forwarding, sick, cancels, runnerNames, runners and deleting
	// live holds each app's instances that are in the router's set.
	live map[string][]*instance
	// forwarding holds the forwarder's backend of each app this node
	// runs no instance of, which is the app's router set instead (see
	// forward and publishLocked).
	forwarding map[string]*router.Backend
	// sick holds instances out of rotation that are being replaced.
	sick map[string][]*instance
	// cancels holds the cancel function of each app's running deployment,
	// until it has switched traffic (after which it cannot be cancelled).
	cancels map[string]context.CancelCauseFunc
	// runnerNames holds each app's single runner lease name, from the
	// settings of its live release; runners, which instance holds it.
	runnerNames map[string]string
	runners     map[string]*runnerHold
	// deleting holds the apps being deleted, from their removal from
	// the store until their instances have stopped and their directory
	// is gone: their names are not free before.
	deleting map[string]bool

	// runnerPoke wakes runRunners, which hands out the single runner
	// leases; runnerBlocked is its own (see noteRunnerBlocked).
	runnerPoke    chan struct{}
	runnerBlocked map[string]string

	// domains are the apps' custom domains.
	domains domainTable

	// pruneMu serializes prune.
	pruneMu sync.Mutex
	stageMu sync.Mutex // guards staged, catching, failedCatchUp, caughtUp
	// staged is this node's part in each app's rollout.
	staged map[string]*staged
	// catching are the apps whose live release this node is starting
	// (see converge); failedCatchUp when it last failed to, by app.
	catching      map[string]bool
	failedCatchUp map[string]time.Time
	// caughtUp is set once the node ran every app's live release.
	caughtUp bool
	// routed are the apps this node's router knows, for converge; only
	// its goroutine uses it.
	routed map[string]routed

	// uidMu makes apps take their uids one at a time; it guards nothing
	// in memory (the owners of the storage directories are the record).
	uidMu sync.Mutex
}

// DefaultKeepReleases is how many recent releases keep their artifacts.
const DefaultKeepReleases = 10

// New returns a manager. Call Recover before serving, Close when done.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.KeepReleases == 0 {
		opts.KeepReleases = DefaultKeepReleases
	}
	if opts.AppUIDBase == 0 {
		opts.AppUIDBase = DefaultAppUIDBase
	}
	if opts.Isolation == "" {
		opts.Isolation = runtime.IsolationNone
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		opts: opts, logger: opts.Logger, ctx: ctx, cancel: cancel, metrics: newMetrics(),
		live: make(map[string][]*instance), sick: make(map[string][]*instance), cancels: make(map[string]context.CancelCauseFunc),
		staged: make(map[string]*staged), routed: make(map[string]routed), forwarding: make(map[string]*router.Backend), catching: make(map[string]bool), failedCatchUp: make(map[string]time.Time),
		runnerNames: make(map[string]string), runners: make(map[string]*runnerHold), deleting: make(map[string]bool),
		runnerPoke: make(chan struct{}, 1), runnerBlocked: make(map[string]string),
	}
}

// SetPolicy applies app's access restrictions to its traffic at once.
func (m *Manager) SetPolicy(app string, p access.Policy) { m.opts.Router.SetPolicy(app, p) }

// Traffic returns app's requests of the last minute, as the router saw them.
func (m *Manager) Traffic(app string) router.Recent { return m.opts.Router.Recent(app) }

// TrafficHistory returns app's requests of the last hour, a minute each,
// as the router saw them.
func (m *Manager) TrafficHistory(app string) []router.Minute { return m.opts.Router.History(app) }

func (m *Manager) appDir(app string) string { return filepath.Join(m.opts.DataDir, "apps", app) }

// OutputDir is where the instances of app keep their output files, in
// the data directory dataDir.
func OutputDir(dataDir, app string) string { return filepath.Join(dataDir, "apps", app, "instances") }
func (m *Manager) storageDir(app string) string {
	return filepath.Join(m.appDir(app), "storage")
}
func (m *Manager) releaseDir(app string, n int) string {
	return filepath.Join(m.appDir(app), "releases", fmt.Sprintf("v%d", n))
}

// CreateApp validates and records a new app and starts routing its hosts.
func (m *Manager) CreateApp(ctx context.Context, name string, s settings.Settings) (store.App, error) {
	if err := settings.ValidateAppName(name); err != nil {
		return store.App{}, err
	}
	if err := s.Validate(); err != nil {
		return store.App{}, err
	}
	a := store.App{Name: name, Created: time.Now().UTC(), Settings: s}
	m.domains.mu.Lock()
	defer m.domains.mu.Unlock()
	m.mu.Lock()
	deleting := m.deleting[name]
	m.mu.Unlock()
	if deleting {
		return store.App{}, fmt.Errorf("creating app %s: %w: it is being deleted, and its instances are finishing their requests; create it again once that is done, in a few seconds", name, store.ErrExists)
	}
	// A custom domain is never under the base domain, unless it was added
	// under another --base-domain: then an app whose default name it is
	// would take it from its owner in the router.
	host := router.NormalizeHost(m.defaultHost(name))
	if owner, err := m.opts.Store.DomainOwner(ctx, host); err != nil {
		return store.App{}, err
	} else if owner != "" {
		return store.App{}, fmt.Errorf("creating app %s, served at %s: %w", name, host, &store.DomainTakenError{Name: host, Owner: owner})
	}
	if err := m.opts.Store.CreateApp(ctx, a); err != nil {
		return store.App{}, fmt.Errorf("creating app %s: %w", name, err)
	}
	m.opts.Router.SetHosts(name, m.Hosts(name))
	m.opts.Logs.Platform(name, 0, "App %s created", name)
	return a, nil
}

// DeleteApp stops app's instances and removes it with its history, unless a
// deployment is running.
func (m *Manager) DeleteApp(ctx context.Context, name string) error {
	a, err := m.opts.Store.App(ctx, name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	again := m.deleting[name]
	m.deleting[name] = true
	m.mu.Unlock()
	if again {
		return fmt.Errorf("deleting app %s: %w: it is being deleted already", name, store.ErrNotFound)
	}
	defer func() {
		m.mu.Lock()
		delete(m.deleting, name)
		m.mu.Unlock()
	}()
	if err := m.removeApp(ctx, name); err != nil {
		return err
	}
	m.mu.Lock()
	old := slices.Concat(m.live[name], m.sick[name])
	m.mu.Unlock()
	// Its leases went with it; its instances, which drain before they
	// stop, take none any more (or an app created again under its name
	// would find them held), and the single runner's file goes.
	for _, inst := range old {
		m.endLeases(inst)
	}
	m.mu.Lock()
	delete(m.live, name)
	delete(m.sick, name)
	m.setRunnerLocked(name, "")
	delete(m.runners, name) // its key went with the app's records
	m.mu.Unlock()
	s := a.Settings.WithDefaults()
	router.Drain(ctx, backends(old), secs(s.DrainTimeout))
	m.stopAll(name, old, s.StopGrace)
	m.opts.Logs.Remove(name)
	return os.RemoveAll(m.appDir(name))
}

// removeApp deletes app from the store, its custom domains with it, and
// stops routing to it.
func (m *Manager) removeApp(ctx context.Context, name string) error {
	m.domains.mu.Lock()
	defer m.domains.mu.Unlock()
	if err := m.opts.Store.DeleteApp(ctx, name); err != nil {
		if errors.Is(err, store.ErrLocked) {
			holder, _ := m.opts.Store.LockHolder(ctx, name)
			return &store.LockedError{App: name, Deployment: holder}
		}
		return err
	}
	m.domains.snap.Store(m.domainSnap().with(name, nil))
	m.opts.Router.RemoveApp(name)
	return nil
}

// Cancel cancels app's running deployment, if it has not switched traffic.
func (m *Manager) Cancel(app string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cancel, ok := m.cancels[app]
	if !ok {
		return fmt.Errorf("%w for app %s, or it has already switched traffic", ErrNotRunning, app)
	}
	cancel(ErrCancelled)
	return nil
}

// publishLocked makes insts app's live set, in the manager and in the
// router's backend set at once; it is the only writer of both. With s, the
// settings of a newly live release, the router's treatment of the app's
// requests changes with it.
//
// On a node of a cluster, instances end the forwarding of the app's
// requests to the nodes that run it (see forward); while it forwards, the
// router's set is the forwarder. Call with m.mu held.
func (m *Manager) publishLocked(app string, insts []*instance, s *settings.Settings) {
	if s != nil {
		m.opts.Router.Configure(app, routeConfig(*s))
		m.setRunnerLocked(app, s.SingleRunner)
	}
	if len(insts) > 0 {
		delete(m.forwarding, app)
	}
	m.live[app] = insts
	set := backends(insts)
	if b := m.forwarding[app]; b != nil {
		set = []*router.Backend{b}
	}
	m.opts.Router.Swap(app, set)
	m.pokeRunners()
}

// routeConfig is how the router treats the requests of an app whose live
// release has settings s (with defaults).
func routeConfig(s settings.Settings) router.RouteConfig {
	return router.RouteConfig{Hold: secs(s.HoldTimeout), AccessLog: s.AccessLog}
}

// without returns a copy of insts without x.
func without(insts []*instance, x *instance) []*instance {
	return slices.DeleteFunc(slices.Clone(insts), func(i *instance) bool { return i == x })
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

func backends(insts []*instance) []*router.Backend {
	out := make([]*router.Backend, len(insts))
	for i, inst := range insts {
		out[i] = inst.backend
	}
	return out
}

// stopAll stops instances concurrently and waits for all of them.
func (m *Manager) stopAll(app string, insts []*instance, grace int) {
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			safego.Run(m.logger, "stopping "+inst.ID, func() { m.stopInstance(app, inst, grace) })
		}()
	}
	wg.Wait()
}

// spawn runs fn in a goroutine that Close waits for; a panic in it is
// logged with its stack and ends only that goroutine.
func (m *Manager) spawn(name string, fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		safego.Run(m.logger, name, fn)
	}()
}

// supervise runs fn, a long-lived worker that returns when m.ctx ends, in
// a goroutine that Close waits for; after a panic, which is logged with
// its stack, fn starts again.
func (m *Manager) supervise(name string, fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		safego.Supervise(m.logger, name, m.ctx.Done(), 0, fn)
	}()
}

// context0 is for store writes that must happen even while shutting down.
// The store is in-process etcd, which answers or fails at once.
func context0() context.Context { return context.Background() }

// Stop cancels running deployments, before they switch traffic, and every
// later one, and ends the health checks and replacements: the daemon is
// stopping. It does not wait; Close does.
func (m *Manager) Stop() {
	m.mu.Lock()
	for _, cancel := range m.cancels {
		cancel(ErrShuttingDown)
	}
	m.mu.Unlock()
	m.cancel()
}

// Close stops the manager (see Stop) and waits for deployments to clean
// up. Then it stops every live instance, or, with keep, leaves them
// running for the next daemon to adopt. Stop the router's listener first
// so that no request is cut off.
func (m *Manager) Close(keep bool) {
	m.Stop()
	m.wg.Wait()
	m.stageMu.Lock()
	for app := range m.staged {
		m.dropStagedLocked(app)
	}
	m.stageMu.Unlock()
	m.wg.Wait()
	m.mu.Lock()
	live, sick := m.live, m.sick
	m.live, m.sick = make(map[string][]*instance), make(map[string][]*instance)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for app, insts := range live {
		insts = slices.Concat(insts, sick[app])
		for _, inst := range insts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				safego.Run(m.logger, "stopping "+inst.ID, func() {
					if keep {
						inst.Detach()
						return
					}
					m.stopInstance(app, inst, m.stopGrace(app))
				})
			}()
		}
	}
	wg.Wait()
}

func (m *Manager) stopGrace(app string) int {
	a, err := m.opts.Store.App(context0(), app)
	if err != nil {
		return settings.Settings{}.WithDefaults().StopGrace
	}
	return a.Settings.WithDefaults().StopGrace
}

// InstanceStatus describes one instance.
type InstanceStatus struct {
	ID       string    `json:"id"`
	Release  int       `json:"release"`
	PID      int       `json:"pid"`
	Port     int       `json:"port"`
	State    string    `json:"state"`
	Note     string    `json:"note,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Restarts int       `json:"restarts"`
	InFlight int64     `json:"in_flight"`
	Adopted  bool      `json:"adopted,omitempty"`
}

// Instances lists app's instances: those in rotation, then those being
// replaced.
func (m *Manager) Instances(app string) []InstanceStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []InstanceStatus
	for _, inst := range append(slices.Clone(m.live[app]), m.sick[app]...) {
		out = append(out, InstanceStatus{ID: inst.ID, Release: inst.release, PID: inst.PID, Port: inst.Port,
			State: inst.state, Note: inst.note, Started: inst.liveSince, Restarts: inst.restarts,
			InFlight: inst.backend.InFlight(), Adopted: inst.Adopted})
	}
	return out
}
