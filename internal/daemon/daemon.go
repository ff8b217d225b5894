// Package daemon wires the parts into `slipway server`: the store, the
// artifact store, the logs, the router, the deployment manager and the API.
package daemon

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
)

// Defaults for Config.
const (
	DefaultHTTPListen = ":8080"
	DefaultAPIListen  = "127.0.0.1:7070"
	// DefaultLeaseListen is the lease endpoint's address: loopback, on a
	// port chosen at the first start and kept (see leaseListener).
	DefaultLeaseListen = "127.0.0.1:0"
	DefaultBaseDomain  = "localhost"
	// shutdownTimeout bounds the wait for requests in flight on the router
	// and the API when the daemon stops.
	shutdownTimeout = 30 * time.Second
)

// Config is the server's configuration, from flags or SLIPWAY_* variables.
type Config struct {
	DataDir    string
	HTTPListen string
	APIListen  string
	// LeaseListen is the lease endpoint's address, which instances reach
	// at SLIPWAY_LEASE_URL; it must be on loopback. Empty means
	// DefaultLeaseListen.
	LeaseListen string
	BaseDomain  string
	// MaxUpload bounds an artifact upload, in bytes.
	MaxUpload int64
	// MinFreeSpace is the free space, in bytes, that uploads and unpacked
	// releases leave on the data directory's disk for the store and the
	// logs; 0 means artifact.DefaultMinFreeSpace (512 MiB) or 5% of the
	// disk, whichever is less.
	MinFreeSpace int64
	// KeepReleases is how many recent releases of each app keep their
	// artifacts, for rollback.
	KeepReleases int
	// KeepInstances leaves the instances running when the daemon stops, for
	// the next daemon to adopt.
	KeepInstances bool
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// finding a client's address for the access rules.
	TrustedProxies []netip.Prefix
	// HTTPSListen is the router's HTTPS address; empty for none.
	HTTPSListen string
	TLS         TLSConfig
	// APITLSCert and APITLSKey make the API listener serve TLS.
	APITLSCert, APITLSKey string
	// PublicURL is the API's URL as clients reach it, when that is not
	// the listen address (a proxy, a name): the URLs of the App Service
	// deploy endpoints and of publish profiles start with it. Empty means
	// the scheme and Host of each request.
	PublicURL string
	// Logs bounds the apps' log files: file size, quota, retention.
	Logs logs.Options
	// LogHeartbeat is how long a followed log stream stays silent before
	// the daemon sends a heartbeat line.
	LogHeartbeat time.Duration
	// Isolation is how instances are kept from what is not theirs: auto
	// (the default, also when empty: user as root, landlock otherwise),
	// user, landlock or none. See runtime.Isolation and deploy's
	// isolation.go.
	Isolation string
	// AppUIDBase is the first uid given to an app under user isolation;
	// deploy.DefaultAppUIDBase when 0.
	AppUIDBase uint32
	// JDKs are the directories of JDKs an app may ask for by their Java
	// version, besides those under runtime.DefaultJDKDir (--jdk).
	JDKs  []string
	Debug bool
	// Restore is a backup (`slipway admin backup`) to restore into the
	// data directory, which must hold no state, before the daemon starts.
	Restore string
	Cluster ClusterConfig
	Logger  *slog.Logger
}

// ClusterConfig is the node's part in a cluster (see package cluster).
type ClusterConfig struct {
	// NodeName is the node's name in its cluster; the host name when
	// empty.
	NodeName string
	// Advertise is the address peers reach the node at; the host of
	// --api-listen when empty.
	Advertise string
	// PeerPort is the peer link's port.
	PeerPort int
	// Labels are k=v pairs an app's placement can ask for.
	Labels []string
	// Join is the API URL of a node of the cluster to join, with
	// JoinToken.
	Join, JoinToken string
	// Etcd is an external etcd cluster to keep the state in, instead of
	// the embedded member.
	Etcd EtcdConfig
}

// EtcdConfig names an external etcd cluster and how to reach it.
type EtcdConfig struct {
	// Endpoints are its client URLs, all https:// or all unix:// (no
	// plain http: see validate).
	Endpoints []string
	// CAFile is the CA to check the cluster's certificates by (the
	// system's when empty); CertFile and KeyFile are the client
	// certificate the cluster asks for.
	CAFile, CertFile, KeyFile string
}

// external reports whether an external cluster is configured.
func (e EtcdConfig) external() bool { return len(e.Endpoints) > 0 }

// ErrNoDataDir says that no data directory was given and there is no
// default (see DefaultDataDir).
var ErrNoDataDir = errors.New("no data directory: --data-dir is empty, and there is no default without a home directory ($HOME is not set); " +
	"give one with --data-dir DIR or SLIPWAY_DATA_DIR, like --data-dir /var/lib/slipway")

// DefaultDataDir is $XDG_DATA_HOME/slipway, else for root /var/lib/slipway
// (which the apps' users can reach, unlike root's home), else
// ~/.local/share/slipway. Root keeps ~/.local/share/slipway if it has one
// and no /var/lib/slipway: nothing seems lost after an upgrade, and the
// daemon says how to move it. It is "" for a user other than root without
// a home directory ($HOME unset, as under some service managers): there
// is no good default then, and Validate asks for --data-dir.
func DefaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = ""
	}
	return defaultDataDir(os.Getenv("XDG_DATA_HOME"), home, os.Geteuid())
}

func defaultDataDir(xdgDataHome, home string, euid int) string {
	if xdgDataHome != "" {
		return filepath.Join(xdgDataHome, "slipway")
	}
	legacy := filepath.Join(home, ".local", "share", "slipway")
	if euid == 0 {
		if _, err := os.Stat(rootDataDir); err == nil || home == "" {
			return rootDataDir
		}
		if _, err := os.Stat(legacy); err != nil {
			return rootDataDir
		}
	}
	if home == "" {
		return ""
	}
	return legacy
}

// rootDataDir is the default data directory of a daemon run as root.
const rootDataDir = "/var/lib/slipway"

// Validate checks the configuration before anything starts.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return ErrNoDataDir
	}
	addrs := map[string]string{"--http-listen": c.HTTPListen, "--api-listen": c.APIListen}
	if c.HTTPSListen != "" {
		addrs["--https-listen"] = c.HTTPSListen
	}
	for flag, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s %q: want host:port, like 127.0.0.1:7070 or :8080", flag, addr)
		}
	}
	if err := checkLoopback(cmp.Or(c.LeaseListen, DefaultLeaseListen)); err != nil {
		return err
	}
	if c.BaseDomain == "" {
		return errors.New("--base-domain is empty")
	}
	if c.KeepReleases < 1 {
		return fmt.Errorf("--keep-releases must be at least 1, not %d", c.KeepReleases)
	}
	if c.MaxUpload <= 0 {
		return fmt.Errorf("--max-upload must be a positive number of bytes, not %d", c.MaxUpload)
	}
	if c.MinFreeSpace < 0 {
		return fmt.Errorf("--min-free-space must be a number of bytes, or 0 for the default, not %d", c.MinFreeSpace)
	}
	if err := validPublicURL(c.PublicURL); err != nil {
		return err
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if c.HTTPSListen != "" && !c.TLS.Enabled() {
		return errors.New("--https-listen needs certificates: --tls-cert and --tls-key, --tls-cert-dir, or an ACME CA (--acme-email, --acme-directory, --acme-hosts)")
	}
	if c.LogHeartbeat < 0 {
		return fmt.Errorf("--log-heartbeat %s is negative", c.LogHeartbeat)
	}
	if err := c.Logs.Validate(); err != nil {
		return fmt.Errorf("--log-file-size, --log-quota, --log-retention-days: %w", err)
	}
	if _, err := runtime.ParseIsolation(c.Isolation); err != nil {
		return fmt.Errorf("--isolation: %w", err)
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	if c.Restore != "" && c.Cluster.Etcd.external() {
		return errors.New("--restore and --etcd-endpoints: --restore fills the embedded store; restore an external etcd cluster with etcd's own tools, or restore into a node without --etcd-endpoints")
	}
	if c.AppUIDBase != 0 && (c.AppUIDBase < 1000 || c.AppUIDBase > math.MaxInt32-deploy.AppUIDCount) {
		return fmt.Errorf("--app-uid-base %d: want a uid from 1000 to %d, so that its %d uids stay below 2^31", c.AppUIDBase, math.MaxInt32-deploy.AppUIDCount, deploy.AppUIDCount)
	}
	return nil
}

// Run serves until ctx ends, then shuts down: the listeners stop taking
// connections and finish their requests, deployments are cancelled, and
// every instance is stopped. On SIGHUP, or `slipway admin upgrade`, it
// hands its listeners and its data directory to a new process of the
// binary at its path, and exits once that one serves (see upgrade.go).
func Run(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log := c.Logger
	isolation, err := isolationMode(c.Isolation, log)
	if err != nil {
		return err
	}
	if err := deploy.SecureDataDir(c.DataDir, isolation); err != nil {
		return err
	}
	if err := logStacks(log, c.JDKs); err != nil {
		return err
	}
	s := &server{c: c, log: log, isolation: isolation, started: time.Now(),
		upgrades: make(chan struct{}, 1), errc: make(chan error, 4), hup: hup}
	if c.HTTPSListen != "" {
		if s.certs, err = loadCerts(c.TLS, c.DataDir); err != nil {
			return err
		}
	}
	if s.apiTLS, err = apiTLS(c.APITLSCert, c.APITLSKey); err != nil {
		return err
	}
	if s.up, err = newUpgrader(log); err != nil {
		return err
	}
	defer s.up.Stop()
	s.leaseSock.fds = s.up.Fds
	s.rt = router.New(router.Options{Logger: log, TrustedProxies: c.TrustedProxies, HTTPSPort: port(c.HTTPSListen), AccessLog: s.writeAccess})
	if c.Cluster.Join != "" || c.Cluster.Etcd.external() || cluster.HasPeers(c.DataDir) {
		// A node of a cluster is ready for the load balancer once it
		// runs every app's live release (see deploy's converge).
		s.rt.SetNotReady("starting")
	}
	restored, err := s.take(ctx)
	defer func() {
		if s.unlock != nil {
			s.unlock()
		}
	}()
	if err != nil {
		return err
	}
	return s.run(ctx, restored)
}

var errShuttingDown = errors.New("the daemon is shutting down")

// isolationMode resolves the --isolation mode and says in the log what it
// gives.
func isolationMode(name string, log *slog.Logger) (runtime.Isolation, error) {
	mode, err := runtime.ParseIsolation(name)
	if err != nil {
		return "", err
	}
	if mode, err = mode.Resolve(); err != nil {
		return "", err
	}
	switch abi := runtime.LandlockABI(); {
	case mode == runtime.IsolationLandlock && abi == 0:
		log.Warn("isolation: landlock, but this kernel has no Landlock: instances can read and write whatever the daemon's user can")
	case mode == runtime.IsolationLandlock && abi < 6:
		log.Warn("isolation: landlock, but this kernel's Landlock is older than ABI 6: instances can signal the daemon and each other", "landlock_abi", abi)
	case mode == runtime.IsolationLandlock:
		log.Info("isolation: landlock", "landlock_abi", abi)
	case mode == runtime.IsolationNone:
		log.Warn("isolation: none: instances can read and write whatever the daemon's user can, the admin token included")
	default:
		log.Info("isolation: " + string(mode) + ", each app runs as a user of its own")
	}
	return mode, nil
}

// logStacks says in the log which JDKs apps may ask for and whether the
// tomcat stack has its Tomcat; a --jdk that names no JDK stops the start.
// (They are looked for again as each instance starts.)
func logStacks(log *slog.Logger, named []string) error {
	jdks, err := runtime.FindJDKs(named, []string{runtime.DefaultJDKDir}, "java")
	if err != nil {
		return fmt.Errorf("--jdk: %w", err)
	}
	for _, j := range jdks.All() {
		log.Info("JDK found", "java_version", j.Feature, "version", j.Version, "home", j.Home)
	}
	if len(jdks.All()) == 0 {
		log.Warn("no JDK found under " + runtime.DefaultJDKDir + " or named with --jdk: an app that asks for a Java version cannot start")
	}
	if d := jdks.Default; d != nil {
		log.Info("default JDK, for apps that ask for no Java version: the java on PATH", "version", d.Version, "home", d.Home)
	} else {
		log.Warn("no java on PATH, or it is no JDK with a release file: apps that ask for no Java version may not start")
	}
	if t, err := runtime.FindTomcat(runtime.DefaultTomcatLib); err != nil {
		log.Info("the tomcat stack is not available", "reason", err)
	} else {
		log.Info("tomcat stack: Apache Tomcat "+t.Version, "lib", runtime.DefaultTomcatLib)
	}
	return nil
}

// instanceCgroups gives instances cgroups of their own, under the
// daemon's, in a directory named after the data directory (two daemons
// never share one); nil, said in the log, where that cannot be done.
func instanceCgroups(dataDir string, log *slog.Logger) *runtime.Cgroups {
	abs, _ := filepath.Abs(dataDir)
	sum := sha256.Sum256([]byte(abs))
	cg, err := runtime.NewCgroups("slipway-" + hex.EncodeToString(sum[:6]))
	if err != nil {
		log.Info("instances get no cgroup of their own: stopping one stops its process group and the processes that descend from it, but not a process whose parent has already exited and that left the group (setsid)", "reason", err)
		return nil
	}
	log.Debug("each instance runs in a cgroup of its own", "cgroups", cg.Dir())
	return cg
}

// warnLowSpace tells the operator at start when the data directory's disk
// is already under the reserve, so that the refusals that follow are no
// surprise.
func warnLowSpace(log *slog.Logger, arts *artifact.Store) {
	now, keep, err := arts.Space()
	if err != nil {
		log.Warn("cannot tell the data directory's free space", "err", err)
		return
	}
	if now.Free < keep {
		log.Warn("the data directory's disk has less free space than Slipway keeps (--min-free-space): uploads and new releases are refused until space is freed",
			"free_bytes", now.Free, "min_free_space_bytes", keep)
	}
}

// validPublicURL checks --public-url: an absolute http or https URL, with
// a path at most.
func validPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: want the API's URL as clients reach it, like https://deploy.example.com:7443", s)
	}
	return nil
}

// port returns the port of a listen address, "" when there is none.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
