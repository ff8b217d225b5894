package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/web"
)

// server is one `slipway server` process. Its router and listeners live
// as long as the process; its core (the store and all that needs it, the
// API included) lives as long as the process holds the data directory,
// which an upgrade hands to the next process while the router goes on
// serving (see upgrade.go).
type server struct {
	c         Config
	log       *slog.Logger
	isolation runtime.Isolation
	certs     *certSet
	apiTLS    *tls.Config
	up        *upgrader
	rt        *router.Router
	started   time.Time

	// The listening sockets, which an upgrade hands on: the router's
	// (HTTP, then HTTPS if any) and the API's. The router's servers use
	// them for the life of the process; each core's API server uses a
	// copy of apiLn, so that closing it leaves the socket open.
	routerLns []namedListener
	apiLn     net.Listener
	routers   []*http.Server
	// leaseSock is the lease endpoint's socket, which the first core
	// opens (its address is in the store) and the next ones reuse; an
	// upgrade hands it on too. Owned by the goroutine of run.
	leaseSock leaseSocket

	// accessLog is the current core's access log writer, nil while the
	// process holds no core.
	accessLog atomic.Pointer[logs.Async]

	// Owned by the goroutine of run: the data directory's lock, the core
	// and its API server; nil while handed over.
	unlock func()
	core   *core
	api    *apiServer

	// upgrades asks run for an upgrade; errc reports a listener that
	// failed, which stops the daemon.
	upgrades chan struct{}
	errc     chan error
	// hup gets SIGHUP, caught from the start: its default would end the
	// process.
	hup chan os.Signal

	mu sync.Mutex // guards last
	// last is the last upgrade this process tried; nil before any.
	last *api.Upgrade
}

type namedListener struct {
	name string
	ln   net.Listener
	tls  *tls.Config // nil for plain HTTP
}

// take gets the data directory's lock and the listening sockets. A first
// process locks the data directory (restoring a backup into it, with
// --restore), then listens. A process started by an upgrade inherits
// the sockets, asks the old process for the data directory, and waits
// for its lock: the old one lets go of it once it has finished its API
// requests and closed its store.
func (s *server) take(ctx context.Context) (restored bool, err error) {
	if s.up.child() {
		if s.c.Restore != "" {
			s.log.Warn("--restore is ignored by the process an upgrade starts: the data directory is the old process's")
		}
		if err := s.listen(); err != nil {
			return false, err
		}
		if err := s.up.askForDataDir(); err != nil {
			return false, err
		}
		s.log.Info("upgrade: this new process has the listening sockets; waiting for the old one to hand over the data directory")
		s.unlock, err = waitLock(ctx, s.c.DataDir, upgradeTimeout)
		return false, err
	}
	s.unlock, err = LockDataDir(s.c.DataDir)
	if errors.Is(err, ErrRunning) {
		return false, fmt.Errorf("%s: %w, or pick another --data-dir", s.c.DataDir, err)
	}
	if err != nil {
		return false, err
	}
	if s.c.Restore != "" {
		if err := restore(s.c, s.log); err != nil {
			return false, err
		}
		restored = true
	}
	return restored, s.listen()
}

// listen opens the listening sockets, or takes them from the old process.
func (s *server) listen() error {
	add := func(name, flag, addr string, tlsConfig *tls.Config) error {
		ln, err := s.up.Listen("tcp", addr)
		if err != nil {
			hint := ""
			if errors.Is(err, syscall.EADDRINUSE) {
				hint = "another slipway server, or another program, listens there; "
			}
			return fmt.Errorf("%s: listening on %s: %w; %spick another address with %s", name, addr, err, hint, flag)
		}
		s.log.Info("listening", "listener", name, "addr", ln.Addr().String(), "tls", tlsConfig != nil, "inherited", s.up.child())
		if name == "api" {
			s.apiLn = ln
		} else {
			s.routerLns = append(s.routerLns, namedListener{name: name, ln: ln, tls: tlsConfig})
		}
		return nil
	}
	if err := add("router", "--http-listen", s.c.HTTPListen, nil); err != nil {
		return err
	}
	if s.certs != nil {
		if err := add("router-https", "--https-listen", s.c.HTTPSListen, s.certs.tlsConfig()); err != nil {
			return err
		}
	}
	return add("api", "--api-listen", s.c.APIListen, s.apiTLS)
}

// run opens the core, serves, and waits for the end or an upgrade.
func (s *server) run(ctx context.Context, restored bool) error {
	if err := s.open(ctx, restored); err != nil {
		return err
	}
	s.serveRouter()
	if err := s.up.Ready(); err != nil {
		s.shutdown(true)
		return fmt.Errorf("upgrade: telling the old process that this one is ready: %w", err)
	}
	if !s.up.child() {
		sdNotify(s.log, "READY=1")
	}
	for {
		select {
		case <-ctx.Done():
			s.log.Info("shutting down")
			s.shutdown(s.c.KeepInstances)
			return nil
		case err := <-s.errc:
			s.shutdown(s.c.KeepInstances)
			return err
		case <-s.hup:
			if _, err := s.requestUpgrade(); err != nil {
				s.log.Warn("SIGHUP: no upgrade", "reason", err)
			}
		case <-s.upgrades:
			handedOver, err := s.upgrade()
			if err != nil {
				s.shutdown(true)
				return err
			}
			if handedOver {
				s.finish()
				return nil
			}
		}
	}
}

// open opens the core and serves its API.
func (s *server) open(ctx context.Context, restored bool) error {
	k, err := s.openCore(ctx, restored)
	if err != nil {
		return err
	}
	s.core = k
	// The dashboard takes the API listener's other paths (see web.New).
	dash := web.New(web.Options{API: k.api, Deploys: k.mgr, Cluster: k.cl, Logger: s.log, Secure: s.apiTLS != nil})
	// Peers forward changes made at them, through the API or the
	// dashboard, to this node's whole API listener.
	k.cl.SetAPI(dash)
	return s.serveAPI(dash)
}

// release lets go of the data directory, for the new process of an
// upgrade: the API stops taking requests and finishes those in flight,
// running deployments are cancelled, and the core closes, leaving the
// instances running for the new process to adopt; then the lock goes.
// The router goes on serving from what it holds.
func (s *server) release() {
	s.core.mgr.Stop()
	s.stopAPI()
	s.closeCore(true)
	s.unlock()
	s.unlock = nil
}

// reopen takes the data directory back after an upgrade whose new
// process failed once it had it.
func (s *server) reopen(ctx context.Context) error {
	unlock, err := waitLock(ctx, s.c.DataDir, upgradeTimeout)
	if err != nil {
		return err
	}
	s.unlock = unlock
	return s.open(ctx, false)
}

// shutdown stops the daemon: no deployment switches traffic any more,
// streams and WebSockets, which would hold the shutdown, are told to
// close, every listener stops at once and its requests in flight finish
// (shutdownTimeout at most), then the core closes; with keep, the
// instances go on running.
func (s *server) shutdown(keep bool) {
	sdNotify(s.log, "STOPPING=1")
	if s.core != nil {
		s.core.mgr.Stop()
	}
	s.rt.CloseStreams(errShuttingDown)
	var cancel context.CancelCauseFunc
	servers := s.routers
	if s.api != nil {
		servers, cancel = append(servers, s.api.srv), s.api.cancel
		s.api = nil
	}
	shutdownServers(servers, cancel)
	if s.core != nil {
		s.closeCore(keep)
	}
}

// closeCore closes the core; the router's access log lines are dropped
// from then on, until a core opens again.
func (s *server) closeCore(keep bool) {
	s.accessLog.Store(nil)
	s.core.close(keep)
	s.core = nil
}

// finish ends the old process of an upgrade once the new one serves: the
// router stops taking connections (the new process takes them from the
// same sockets), its streams are told to close, and its requests in
// flight finish.
func (s *server) finish() {
	s.rt.CloseStreams(errUpgraded)
	shutdownServers(s.routers, nil)
	s.log.Info("upgrade: the requests in flight are done; this old process exits")
}

var errUpgraded = errors.New("the daemon was upgraded")

// serveRouter serves the router on its sockets until the process ends.
func (s *server) serveRouter() {
	for _, l := range s.routerLns {
		h := http.Handler(s.rt)
		if l.tls == nil {
			h = s.certs.httpHandler(s.rt)
		}
		srv := s.newHTTPServer(h, l.tls)
		s.routers = append(s.routers, srv)
		s.goServe(l.name, srv, l.ln)
	}
}

// apiServer is a core's API server, with the base of its requests'
// contexts: cancelling it ends the API's streams (a followed log).
type apiServer struct {
	srv    *http.Server
	cancel context.CancelCauseFunc
}

// serveAPI serves h on a copy of the API's socket.
func (s *server) serveAPI(h http.Handler) error {
	ln, err := dupListener(s.apiLn)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	base, cancel := context.WithCancelCause(context.Background())
	srv := s.newHTTPServer(h, s.apiTLS)
	srv.BaseContext = func(net.Listener) context.Context { return base }
	s.api = &apiServer{srv: srv, cancel: cancel}
	s.goServe("api", srv, ln)
	return nil
}

// stopAPI stops the API server: no new request, those in flight finish
// (shutdownTimeout at most), streams end at once.
func (s *server) stopAPI() {
	if s.api == nil {
		return
	}
	shutdownServers([]*http.Server{s.api.srv}, s.api.cancel)
	s.api = nil
}

func (s *server) newHTTPServer(h http.Handler, tlsConfig *tls.Config) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, TLSConfig: tlsConfig,
		// Handshake failures and the like are the clients' business: debug.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
}

// goServe serves srv on ln in a goroutine; a failure other than the
// server's own shutdown stops the daemon.
func (s *server) goServe(name string, srv *http.Server, ln net.Listener) {
	go func() {
		serve := srv.Serve
		if srv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		// A panic in a handler is net/http's to recover; one in its
		// accept loop stops the daemon like any failed listener.
		err := http.ErrServerClosed
		if perr := safego.Run(s.log, name+" listener", func() { err = serve(ln) }); perr != nil {
			err = perr
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// dupListener is a listener of its own on ln's socket: closing it leaves
// ln, and the socket, open.
func dupListener(ln net.Listener) (net.Listener, error) {
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f)
}

// shutdownServers stops every server's listener at once, waits for
// requests in flight up to shutdownTimeout, and ends the contexts of the
// API's streams (cancelBase); what still runs then is closed.
func shutdownServers(servers []*http.Server, cancelBase context.CancelCauseFunc) {
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

// writeAccess queues a line of the router's access log, if the process
// holds a core; a line written while it holds none is dropped.
func (s *server) writeAccess(app string, e router.AccessRecord) {
	a := s.accessLog.Load()
	if a == nil {
		return
	}
	a.Write(app, logs.Line{Time: time.Now().UTC(), Source: logs.SourceRouter, Stream: logs.StreamAccess, Text: fmt.Sprintf(
		"method=%s path=%q status=%d duration_ms=%.1f bytes=%d instance=%s client=%s",
		e.Method, e.Path, e.Status, float64(e.Duration.Microseconds())/1000, e.Bytes, e.Instance, e.Client)})
}
