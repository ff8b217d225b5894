package daemon

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/scm"
	"github.com/slipway-dev/slipway/internal/store"
)

// core is what a process has while it holds the data directory: the
// store, the artifacts, the logs, the instances' cgroups, the deployment
// manager and the API handler.
type core struct {
	cl        *cluster.Cluster
	st        *store.Store
	arts      *artifact.Store
	hub       *logs.Hub
	accessLog *logs.Async
	cgroups   *runtime.Cgroups
	mgr       *deploy.Manager
	api       *api.Server
	// leaseLn is the core's copy of the lease endpoint's socket (see
	// leaseSocket), and leaseSrv serves it once the instances left
	// running are adopted: their calls wait until then, rather than
	// being refused as from instances nobody knows. The endpoint belongs
	// to the core: its address is kept in the store, so that the next
	// core (after a restart or an upgrade) listens where the adopted
	// instances' SLIPWAY_LEASE_URL points.
	leaseLn  net.Listener
	leaseSrv *http.Server
}

// openCore opens the store and everything that needs it, and recovers
// the state an earlier process left: the instances it left running are
// adopted, what is missing is started. If it fails, what it opened is
// closed again, the instances left running for the next process (the old
// process of an upgrade, or the next start) when --keep-instances says so
// or this process was started by an upgrade.
func (s *server) openCore(ctx context.Context, restored bool) (k *core, err error) {
	k = &core{}
	defer func() {
		if err != nil {
			s.accessLog.Store(nil)
			k.close(s.c.KeepInstances || s.up.child())
		}
	}()
	c, log := s.c, s.log
	if k.cl, err = cluster.Prepare(ctx, s.clusterOptions()); err != nil {
		return k, err
	}
	so, err := s.storeOptions(k.cl.Peer())
	if err != nil {
		return k, err
	}
	if k.st, err = store.Open(so); err != nil {
		return k, err
	}
	if err := k.cl.Start(k.st); err != nil {
		return k, err
	}
	tokenFile := AdminTokenFile(c.DataDir)
	k.arts, err = artifact.NewStore(artifact.Options{Dir: filepath.Join(c.DataDir, "artifacts"), MaxUpload: c.MaxUpload, MinFreeSpace: c.MinFreeSpace})
	if err != nil {
		return k, err
	}
	warnLowSpace(log, k.arts)
	lo := c.Logs
	lo.Dir, lo.Logger = filepath.Join(c.DataDir, "logs"), log
	// An app's instance output files count against its log quota.
	lo.Beside = func(app string) int64 {
		return runtime.OutputDiskUse(deploy.OutputDir(c.DataDir, app))
	}
	// The logs may take half of the reserve uploads and releases leave;
	// the other half stays the store's.
	if _, keep, err := k.arts.Space(); err == nil {
		lo.MinFree = keep / 2
	}
	k.hub = logs.NewHub(lo)
	// The access log is written from a goroutine of its own: a request
	// only queues its line (see logs.Async).
	k.accessLog = k.hub.NewAsync(logs.DefaultAsyncBuffer)
	s.accessLog.Store(k.accessLog)
	k.cgroups = instanceCgroups(c.DataDir, log)
	leaseKey, err := lease.LoadKey(filepath.Join(c.DataDir, "lease.key"))
	if err != nil {
		return k, err
	}
	// Listening before the instances start (or are adopted): their
	// SLIPWAY_LEASE_URL names it.
	if k.leaseLn, err = leaseListener(ctx, k.st, &s.leaseSock, cmp.Or(c.LeaseListen, DefaultLeaseListen), log); err != nil {
		return k, err
	}
	leases := lease.New(lease.Options{Store: k.st, URL: lease.EndpointURL(k.leaseLn.Addr().String()), Key: leaseKey, Logger: log})
	forward, err := k.cl.SetRouter(s.rt)
	if err != nil {
		log.Warn("cluster: no forwarder: this node cannot pass the requests of an app it runs no instance of to a node that does", "err", err)
	}
	k.mgr = deploy.New(deploy.Options{Store: k.st, Artifacts: k.arts, Router: s.rt, Logs: k.hub,
		DataDir: c.DataDir, BaseDomain: c.BaseDomain, KeepReleases: c.KeepReleases, Logger: log,
		HTTPS: s.certs != nil, ACME: s.certs != nil && s.certs.acme != nil,
		Isolation: s.isolation, AppUIDBase: c.AppUIDBase, Cgroups: k.cgroups, JDKs: c.JDKs, Leases: leases,
		Hidden:    []string{c.TLS.KeyFile, c.TLS.CertDir, c.APITLSKey},
		Clustered: k.st.Clustered, Fetch: k.cl.Fetch, ForwardDial: forward})
	k.cl.SetArtifacts(k.arts)
	listeners := api.Listeners{HTTPPort: port(c.HTTPListen)}
	if s.certs != nil {
		s.certs.acmeDomain = k.mgr.ACMEDomain // before the HTTPS listener serves
		listeners.HTTPSPort, listeners.HasCertificate = port(c.HTTPSListen), s.certs.covers
	}
	if restored {
		log.Info("restore: starting every app's live release")
	}
	if err := k.mgr.Recover(ctx); err != nil {
		return k, fmt.Errorf("recovering state: %w", err)
	}
	k.leaseSrv = s.newHTTPServer(api.NewLeaseEndpoint(leases, log), nil)
	s.goServe("lease", k.leaseSrv, k.leaseLn)
	reg := prometheus.NewRegistry()
	// Every series carries the node's name, so that the nodes of a
	// cluster can be scraped into one place.
	prometheus.WrapRegistererWith(prometheus.Labels{"node": s.nodeName()}, reg).MustRegister(s.rt.Collector(), k.mgr, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	site := scm.New(scm.Options{Store: k.st, Deploys: k.mgr, Logs: k.hub, MaxUpload: k.arts.MaxUpload(), PublicURL: c.PublicURL, Logger: log})
	k.api = api.New(api.Options{Store: k.st, Deploys: k.mgr, Artifacts: k.arts, Logs: k.hub, Logger: log, Metrics: reg,
		Heartbeat: c.LogHeartbeat, TrustedProxies: c.TrustedProxies, HTTPSListener: c.HTTPSListen != "",
		AdminTokenFile: tokenFile, Listeners: listeners, Operator: &operator{s: s, k: k}, Leases: leases, SCM: site, Cluster: k.cl})
	k.cl.Campaign(k.mgr.TakeOver)
	// The admin token last, once nothing else can fail the start: a start
	// that fails must not consume the one showing of the token (the next
	// start would have none to show).
	if err := adminToken(ctx, k.st, log, tokenFile); err != nil {
		return k, err
	}
	return k, nil
}

// close closes what openCore opened, in the reverse order: the manager
// stops its instances (or, with keep, leaves them running), their
// cgroups' directory goes if empty, the logs and the store close.
func (k *core) close(keep bool) {
	if k.st != nil && k.st.Clustered() {
		// The last node of a cluster to stop has no majority: its last
		// writes (instances gone) must not hold the stop.
		k.st.Closing()
	}
	if k.mgr != nil {
		k.mgr.Close(keep)
	}
	if k.leaseSrv != nil {
		shutdownServers([]*http.Server{k.leaseSrv}, nil) // closes leaseLn
	} else if k.leaseLn != nil {
		k.leaseLn.Close()
	}
	if k.cgroups != nil {
		k.cgroups.Close()
	}
	if k.accessLog != nil {
		k.accessLog.Close()
	}
	if k.hub != nil {
		k.hub.Close()
	}
	if k.st != nil {
		k.st.Close()
	}
	if k.cl != nil {
		k.cl.Close()
	}
}
