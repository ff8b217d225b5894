package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/internal/safego"
)

// A node that runs none of an app's instances (its placement leaves the
// node out) forwards the app's requests to a node that runs some, over
// the peer link. Its router sends them to the forwarder, a unix socket
// only the daemon's user reaches (an app on loopback must not send
// requests that skip another app's access rules), which the deployment
// manager gives the app as its one backend;
// the forwarder picks a peer that runs the app, and that peer's router
// serves the request without applying the app's access rules again.

// routePrefix is where a node's peer link takes app requests forwarded by
// its peers.
const routePrefix = "/slipway/route"

// hopHeader marks a forwarded request, so that it is never forwarded
// twice (a loop between two nodes that both run none).
const hopHeader = "X-Slipway-Forwarded-By"

// runnersEvery is how often the forwarder reads which nodes run which
// apps.
const runnersEvery = time.Second

// Router is the node's router, as the peer link needs it.
type Router interface {
	ServeForwarded(w http.ResponseWriter, r *http.Request)
	AppOf(host string) string
}

// forwarder is the loopback listener of forwarded requests.
type forwarder struct {
	c   *Cluster
	srv *http.Server

	mu sync.Mutex // guards runners, read
	// runners are the nodes that run each app, other than this one.
	runners map[string][]string
	read    time.Time
	next    atomic.Uint32
}

// SetRouter gives the peer link the node's router and starts the
// forwarder; the dial function returned reaches it, for an app's backend.
// The forwarder listens in the daemon's memory, on no socket: an app,
// even one that runs as the daemon's user (Landlock before ABI 9 cannot
// keep it from a unix socket), has no way to it.
func (c *Cluster) SetRouter(rt Router) (func(ctx context.Context) (net.Conn, error), error) {
	c.router.Store(&rt)
	os.Remove(filepath.Join(c.files.dir(), "forward.sock")) // an older version's
	ln := newPipeListener()
	f := &forwarder{c: c}
	tr, err := c.transport()
	if err != nil {
		ln.Close()
		return nil, err
	}
	f.srv = &http.Server{Handler: f.proxy(tr), ReadHeaderTimeout: 10 * time.Second}
	c.mu.Lock()
	c.fwd = f
	c.mu.Unlock()
	go safego.Run(c.log, "forwarder", func() {
		if err := f.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("the forwarder stopped", "err", err)
		}
	})
	return ln.dial, nil
}

// pipeListener is a listener in memory: each dial makes a pipe, whose
// other end Accept returns.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		err := net.ErrClosed
		client.Close()
		server.Close()
		return nil, err
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "forwarder" }

func (f *forwarder) proxy(tr http.RoundTripper) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target, _ := url.Parse(pr.In.Header.Get("X-Slipway-Target"))
			pr.Out.Header.Del("X-Slipway-Target")
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path = routePrefix + pr.In.URL.Path
			pr.Out.URL.RawPath = ""
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(hopHeader, f.c.opts.Name)
			// The router set X-Forwarded-For as it should for the app;
			// it goes on as it is.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
		},
		Transport:     tr,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "the node that runs the app did not answer", http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(hopHeader) != "" {
			http.Error(w, "no node runs the app", http.StatusServiceUnavailable)
			return
		}
		peer := f.pick(r.Context(), f.appOf(r.Host))
		if peer == "" {
			http.Error(w, "no node runs the app", http.StatusServiceUnavailable)
			return
		}
		r.Header.Set("X-Slipway-Target", peer)
		rp.ServeHTTP(w, r)
	})
}

func (f *forwarder) appOf(host string) string {
	rt := f.c.router.Load()
	if rt == nil {
		return ""
	}
	return (*rt).AppOf(host)
}

// pick is the peer URL of a node that runs app, in turn.
func (f *forwarder) pick(ctx context.Context, app string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.read) > runnersEvery {
		if runners, err := f.c.runners(ctx); err == nil {
			f.runners, f.read = runners, time.Now()
		}
	}
	peers := f.runners[app]
	if len(peers) == 0 {
		return ""
	}
	return peers[int(f.next.Add(1))%len(peers)]
}

// runners maps each app to the peer URLs of the other nodes that run it.
func (c *Cluster) runners(ctx context.Context) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	nodes, err := c.st.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := c.st.AllInstances(ctx)
	if err != nil {
		return nil, err
	}
	peerURL := map[string]string{}
	for _, n := range nodes {
		if n.Name != c.opts.Name && n.PeerURL != "" && n.State == "ready" {
			peerURL[n.Name] = n.PeerURL
		}
	}
	out := map[string][]string{}
	for _, r := range recs {
		if u, ok := peerURL[r.Node]; ok && !slices.Contains(out[r.App], u) {
			out[r.App] = append(out[r.App], u)
		}
	}
	return out, nil
}

// servePeerRoute serves an app request a peer forwarded.
func (c *Cluster) servePeerRoute(w http.ResponseWriter, r *http.Request) {
	rt := c.router.Load()
	if rt == nil {
		http.Error(w, "the node is starting", http.StatusServiceUnavailable)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, routePrefix)
	r2.URL.RawPath = ""
	r2.RequestURI = r2.URL.RequestURI()
	(*rt).ServeForwarded(w, r2)
}
