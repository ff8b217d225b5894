// Package daemon wires the parts into `slipway server`: the store, the
// artifact store, the logs, the router, the deployment manager and the API.
package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/store"
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
	// at SLIPWAY_LEASE_URL; it must be on loopback.
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
	Debug      bool
	Logger     *slog.Logger
}

// DefaultDataDir is $XDG_DATA_HOME/slipway, else for root /var/lib/slipway
// (which the apps' users can reach, unlike root's home), else
// ~/.local/share/slipway. Root keeps ~/.local/share/slipway if it has one
// and no /var/lib/slipway: nothing seems lost after an upgrade, and the
// daemon says how to move it.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "slipway")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = ""
	}
	legacy := filepath.Join(home, ".local", "share", "slipway")
	if os.Geteuid() == 0 {
		if _, err := os.Stat(rootDataDir); err == nil || home == "" {
			return rootDataDir
		}
		if _, err := os.Stat(legacy); err != nil {
			return rootDataDir
		}
	}
	if home == "" {
		return "slipway-data"
	}
	return legacy
}

// rootDataDir is the default data directory of a daemon run as root.
const rootDataDir = "/var/lib/slipway"

// Validate checks the configuration before anything starts.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("--data-dir is empty")
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
	if err := checkLoopback(c.LeaseListen); err != nil {
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
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if c.HTTPSListen != "" && !c.TLS.Enabled() {
		return errors.New("--https-listen needs certificates: --tls-cert and --tls-key, --tls-cert-dir, or --acme-hosts")
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
	if c.AppUIDBase != 0 && (c.AppUIDBase < 1000 || c.AppUIDBase > math.MaxInt32-deploy.AppUIDCount) {
		return fmt.Errorf("--app-uid-base %d: want a uid from 1000 to %d, so that its %d uids stay below 2^31", c.AppUIDBase, math.MaxInt32-deploy.AppUIDCount, deploy.AppUIDCount)
	}
	return nil
}

// Run serves until ctx ends, then shuts down: the listeners stop taking
// connections and finish their requests, deployments are cancelled, and
// every instance is stopped.
func Run(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	log := c.Logger
	isolation, err := isolationMode(c.Isolation, log)
	if err != nil {
		return err
	}
	if err := deploy.SecureDataDir(c.DataDir, isolation); err != nil {
		return err
	}
	var certs *certSet
	if c.HTTPSListen != "" {
		var err error
		if certs, err = loadCerts(c.TLS, c.DataDir); err != nil {
			return err
		}
	}
	apiTLSConfig, err := apiTLS(c.APITLSCert, c.APITLSKey)
	if err != nil {
		return err
	}
	unlock, err := LockDataDir(c.DataDir)
	if errors.Is(err, ErrRunning) {
		return fmt.Errorf("%s: %w, or pick another --data-dir", c.DataDir, err)
	}
	if err != nil {
		return err
	}
	defer unlock()
	st, err := store.Open(store.Options{Dir: c.DataDir, Debug: c.Debug, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	tokenFile := AdminTokenFile(c.DataDir)
	if err := adminToken(ctx, st, log, tokenFile); err != nil {
		return err
	}
	arts, err := artifact.NewStore(artifact.Options{Dir: filepath.Join(c.DataDir, "artifacts"), MaxUpload: c.MaxUpload, MinFreeSpace: c.MinFreeSpace})
	if err != nil {
		return err
	}
	warnLowSpace(log, arts)
	lo := c.Logs
	lo.Dir, lo.Logger = filepath.Join(c.DataDir, "logs"), log
	hub := logs.NewHub(lo)
	defer hub.Close()
	// The access log is written from a goroutine of its own: a request
	// only queues its line (see logs.Async).
	accessLog := hub.NewAsync(logs.DefaultAsyncBuffer)
	defer accessLog.Close()
	rt := router.New(router.Options{Logger: log, TrustedProxies: c.TrustedProxies, HTTPSPort: port(c.HTTPSListen), AccessLog: func(app string, e router.AccessRecord) {
		accessLog.Write(app, logs.Line{Time: time.Now().UTC(), Source: logs.SourceRouter, Stream: logs.StreamAccess, Text: fmt.Sprintf(
			"method=%s path=%q status=%d duration_ms=%.1f bytes=%d instance=%s client=%s",
			e.Method, e.Path, e.Status, float64(e.Duration.Microseconds())/1000, e.Bytes, e.Instance, e.Client)})
	}})
	cgroups := instanceCgroups(c.DataDir, log)
	if cgroups != nil {
		defer cgroups.Close() // after the manager's Close: removed if no instance is left in it
	}
	leaseKey, err := lease.LoadKey(filepath.Join(c.DataDir, "lease.key"))
	if err != nil {
		return err
	}
	// Listening before the instances start (or are adopted): their
	// SLIPWAY_LEASE_URL names it.
	leaseLn, err := leaseListener(ctx, st, c.LeaseListen, log)
	if err != nil {
		return err
	}
	defer leaseLn.Close() // if serve never took it
	leases := lease.New(lease.Options{Store: st, URL: lease.EndpointURL(leaseLn.Addr().String()), Key: leaseKey, Logger: log})
	mgr := deploy.New(deploy.Options{Store: st, Artifacts: arts, Router: rt, Logs: hub,
		DataDir: c.DataDir, BaseDomain: c.BaseDomain, KeepReleases: c.KeepReleases, Logger: log,
		Isolation: isolation, AppUIDBase: c.AppUIDBase, Cgroups: cgroups, Leases: leases,
		Hidden: []string{c.TLS.KeyFile, c.TLS.CertDir, c.APITLSKey}})
	defer func() { mgr.Close(c.KeepInstances) }()
	if err := mgr.Recover(ctx); err != nil {
		return fmt.Errorf("recovering state: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(rt.Collector(), mgr, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	apiSrv := api.New(api.Options{Store: st, Deploys: mgr, Artifacts: arts, Logs: hub, Logger: log, Metrics: reg,
		Heartbeat: c.LogHeartbeat, TrustedProxies: c.TrustedProxies, AdminTokenFile: tokenFile, Leases: leases})
	ls := []listener{
		{name: "router", addr: c.HTTPListen, handler: certs.httpHandler(rt)},
		{name: "api", addr: c.APIListen, handler: apiSrv, tls: apiTLSConfig, endStreams: true},
		{name: "lease", ln: leaseLn, handler: api.NewLeaseEndpoint(leases, log)},
	}
	if certs != nil {
		ls = append(ls, listener{name: "router-https", addr: c.HTTPSListen, handler: rt, tls: certs.tlsConfig()})
	}
	return serve(ctx, log, ls, func() {
		// Before the listeners wait for what is in flight: no deployment
		// switches traffic any more, and streams and WebSockets, which
		// would hold the shutdown, are told to close.
		mgr.Stop()
		rt.CloseStreams(errShuttingDown)
	})
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

// port returns the port of a listen address, "" when there is none.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

type listener struct {
	name string
	addr string
	// ln, if set, is the listener already open (addr is unused).
	ln      net.Listener
	handler http.Handler
	tls     *tls.Config // nil for plain HTTP
	// endStreams ends the contexts of the listener's requests when the
	// daemon stops (the API's followed logs and deployments); the
	// router's requests in flight finish instead.
	endStreams bool
}

// serve listens on every address, then serves until ctx ends or one fails,
// and shuts all of them down gracefully, at once: stopping is called
// first, and the requests' contexts end, so that streams (a followed log)
// end at once instead of holding the shutdown.
func serve(ctx context.Context, log *slog.Logger, ls []listener, stopping func()) error {
	servers := make([]*http.Server, 0, len(ls))
	errc := make(chan error, len(ls))
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	for _, l := range ls {
		ln, err := l.ln, error(nil)
		if ln == nil {
			ln, err = net.Listen("tcp", l.addr)
		}
		if err != nil {
			shutdown(servers, nil)
			return fmt.Errorf("%s: listening on %s: %w", l.name, l.addr, err)
		}
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, TLSConfig: l.tls,
			// Handshake failures and the like are the clients' business: debug.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		if l.endStreams {
			srv.BaseContext = func(net.Listener) context.Context { return base }
		}
		servers = append(servers, srv)
		log.Info("listening", "listener", l.name, "addr", ln.Addr().String(), "tls", l.tls != nil)
		go func() {
			serve := srv.Serve
			if l.tls != nil {
				serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
			}
			// A panic in a handler is net/http's to recover; one in its
			// accept loop stops the daemon like any failed listener.
			err := http.ErrServerClosed
			if perr := safego.Run(log, l.name+" listener", func() { err = serve(ln) }); perr != nil {
				err = perr
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", l.name, err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	stopping()
	shutdown(servers, cancelBase)
	return err
}

// shutdown stops every server's listener at once, waits for requests in
// flight up to shutdownTimeout, and ends the contexts of the API's
// streams; what still runs then is closed.
func shutdown(servers []*http.Server, cancelBase context.CancelCauseFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(ctx); err != nil {
				s.Close()
			}
		}()
	}
	if cancelBase != nil {
		cancelBase(errShuttingDown)
	}
	wg.Wait()
}
