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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/web"
)

// Defaults for Config.
const (
	DefaultHTTPListen = ":8080"
	DefaultAPIListen  = "127.0.0.1:7070"
	DefaultBaseDomain = "localhost"
	// shutdownTimeout bounds the wait for requests in flight on the router
	// and the API when the daemon stops.
	shutdownTimeout = 30 * time.Second
)

// Config is the server's configuration, from flags or SLIPWAY_* variables.
type Config struct {
	DataDir    string
	HTTPListen string
	APIListen  string
	BaseDomain string
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
	// JDKs are the directories of JDKs an app may ask for by their Java
	// version, besides those under runtime.DefaultJDKDir (--jdk).
	JDKs   []string
	Debug  bool
	Logger *slog.Logger
}

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
	if err := logStacks(log, c.JDKs); err != nil {
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
	// Listen first, and make the admin token last, once nothing else can
	// fail the start: a start that fails must not consume the one showing
	// of the token (the next start would have none to show).
	ls := []listener{{name: "router", flag: "--http-listen", addr: c.HTTPListen},
		{name: "api", flag: "--api-listen", addr: c.APIListen, tls: apiTLSConfig, endStreams: true}}
	if certs != nil {
		ls = append(ls, listener{name: "router-https", flag: "--https-listen", addr: c.HTTPSListen, tls: certs.tlsConfig()})
	}
	if err := listen(log, ls); err != nil {
		return err
	}
	defer closeListeners(ls) // if serve never takes them
	st, err := store.Open(store.Options{Dir: c.DataDir, Debug: c.Debug, Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	tokenFile := AdminTokenFile(c.DataDir)
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
	mgr := deploy.New(deploy.Options{Store: st, Artifacts: arts, Router: rt, Logs: hub,
		DataDir: c.DataDir, BaseDomain: c.BaseDomain, KeepReleases: c.KeepReleases, Logger: log,
		HTTPS: certs != nil, ACME: certs != nil && certs.acme != nil,
		Isolation: isolation, AppUIDBase: c.AppUIDBase, Cgroups: cgroups, JDKs: c.JDKs,
		Hidden: []string{c.TLS.KeyFile, c.TLS.CertDir, c.APITLSKey}})
	defer func() { mgr.Close(c.KeepInstances) }()
	listeners := api.Listeners{HTTPPort: port(c.HTTPListen)}
	if certs != nil {
		certs.acmeDomain = mgr.ACMEDomain // before the HTTPS listener serves
		listeners.HTTPSPort, listeners.HasCertificate = port(c.HTTPSListen), certs.covers
	}
	if err := mgr.Recover(ctx); err != nil {
		return fmt.Errorf("recovering state: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(rt.Collector(), mgr, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	apiSrv := api.New(api.Options{Store: st, Deploys: mgr, Artifacts: arts, Logs: hub, Logger: log, Metrics: reg,
		Heartbeat: c.LogHeartbeat, TrustedProxies: c.TrustedProxies, HTTPSListener: c.HTTPSListen != "", AdminTokenFile: tokenFile, Listeners: listeners})
	// The dashboard takes the API listener's other paths (see web.New).
	dash := web.New(web.Options{API: apiSrv, Deploys: mgr, Logger: log, Secure: apiTLSConfig != nil})
	ls[0].handler, ls[1].handler = certs.httpHandler(rt), dash
	if certs != nil {
		ls[2].handler = rt
	}
	if err := adminToken(ctx, st, log, tokenFile); err != nil {
		return err
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

// port returns the port of a listen address, "" when there is none.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

type listener struct {
	name    string
	flag    string // the flag that sets addr
	addr    string
	ln      net.Listener // bound by listen
	handler http.Handler
	tls     *tls.Config // nil for plain HTTP
	// endStreams ends the contexts of the listener's requests when the
	// daemon stops (the API's followed logs and deployments); the
	// router's requests in flight finish instead.
	endStreams bool
}

// listen binds every listener's address, before the daemon does
// anything that cannot be undone; if one fails, those bound are closed.
// Connections that come before serve wait in the kernel's queue.
func listen(log *slog.Logger, ls []listener) error {
	for i := range ls {
		ln, err := net.Listen("tcp", ls[i].addr)
		if err != nil {
			closeListeners(ls)
			hint := ""
			if errors.Is(err, syscall.EADDRINUSE) {
				hint = "another slipway server, or another program, listens there; "
			}
			return fmt.Errorf("%s: listening on %s: %w; %spick another address with %s", ls[i].name, ls[i].addr, err, hint, ls[i].flag)
		}
		ls[i].ln = ln
		log.Info("listening", "listener", ls[i].name, "addr", ln.Addr().String(), "tls", ls[i].tls != nil)
	}
	return nil
}

// closeListeners closes the listeners that serve has not taken.
func closeListeners(ls []listener) {
	for i := range ls {
		if ls[i].ln != nil {
			ls[i].ln.Close()
			ls[i].ln = nil
		}
	}
}

// serve serves on every bound listener (see listen) until ctx ends or one
// fails, and shuts all of them down gracefully, at once: stopping is
// called first, and the requests' contexts end, so that streams (a
// followed log) end at once instead of holding the shutdown.
func serve(ctx context.Context, log *slog.Logger, ls []listener, stopping func()) error {
	servers := make([]*http.Server, 0, len(ls))
	errc := make(chan error, len(ls))
	base, cancelBase := context.WithCancelCause(context.Background())
	defer cancelBase(nil)
	for i := range ls {
		l := ls[i]
		ln := l.ln
		ls[i].ln = nil // the server closes it from now on
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, TLSConfig: l.tls,
			// Handshake failures and the like are the clients' business: debug.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		if l.endStreams {
			srv.BaseContext = func(net.Listener) context.Context { return base }
		}
		servers = append(servers, srv)
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
