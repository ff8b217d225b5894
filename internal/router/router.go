package router

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/internal/access"
)

// Options configures a Router.
type Options struct {
	Logger *slog.Logger
	// AccessLog receives a record of each request to an app whose access
	// log is on (SetAccessLog). It is called on the request's goroutine.
	AccessLog func(app string, e AccessRecord)
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// finding a request's client (see access.ClientIP).
	TrustedProxies []netip.Prefix
	// HTTPSPort is the port of the HTTPS listener, for the redirect of an
	// HTTPS-only app; empty means 443.
	HTTPSPort string
}

// Router routes requests by Host to the backends of an app.
type Router struct {
	logger    *slog.Logger
	accessLog func(string, AccessRecord)
	trusted   []netip.Prefix
	httpsPort string
	// table is replaced as a whole by writers, under mu; the request path
	// reads it without a lock.
	table atomic.Pointer[table]
	mu    sync.Mutex // serialises writers of table
	// notReady says why the node is not ready for a load balancer's
	// traffic (a node of a cluster catching up); nil when it is.
	notReady atomic.Pointer[string]
}

// SetNotReady makes the router's health endpoint answer 503 with reason,
// so that a load balancer sends the node no traffic; "" makes it ready.
func (r *Router) SetNotReady(reason string) {
	if reason == "" {
		r.notReady.Store(nil)
		return
	}
	r.notReady.Store(&reason)
}

// table is the routing table. It is never changed in place: writers copy
// it and store the copy.
type table struct {
	// exact maps a lower-case host name (no port) to its app's route.
	exact map[string]*route
	// wild maps the parent of a wildcard name ("shop.example.com" for
	// "*.shop.example.com") to its app's route.
	wild map[string]*route
	// apps maps an app's name to its route.
	apps map[string]*route
}

// lookup finds the route of a normalized host: its exact name first, then
// the wildcard of its parent, which stands for the names one label under
// that parent (as a TLS wildcard does): "*.shop.example.com" finds
// a.shop.example.com, but neither shop.example.com nor
// a.b.shop.example.com. An app's default name NAME.<base-domain> is an
// exact name. It allocates nothing.
func (t *table) lookup(host string) *route {
	if rt := t.exact[host]; rt != nil {
		return rt
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		return t.wild[host[i+1:]]
	}
	return nil
}

// without copies t without app's host names; app keeps its route.
func (t *table) without(app string) *table {
	next := &table{exact: make(map[string]*route, len(t.exact)), wild: make(map[string]*route, len(t.wild)), apps: t.apps}
	for h, rt := range t.exact {
		if rt.app != app {
			next.exact[h] = rt
		}
	}
	for h, rt := range t.wild {
		if rt.app != app {
			next.wild[h] = rt
		}
	}
	return next
}

// route is one app's backend set.
type route struct {
	app string
	// backends is replaced as a whole by Swap; never modified in place.
	backends atomic.Pointer[[]*Backend]
	next     atomic.Uint32 // where the fewest-in-flight scan starts
	// changed is closed, and replaced, by every Swap: requests holding for
	// a backend wait on it.
	changed atomic.Pointer[chan struct{}]
	// hold is how long a request waits for a backend when there is none;
	// zero until Configure.
	hold      atomic.Int64
	stats     routeStats
	accessLog atomic.Bool
	// access holds the app's traffic rules; nil allows everyone.
	access    atomic.Pointer[access.Matcher]
	httpsOnly atomic.Bool
	// expecting counts what is under way that can bring a backend: a
	// deployment, a replacement. Requests are held only meanwhile.
	expecting atomic.Int32
	// warned limits the log lines about the app's 503s.
	warned logLimit
}

func newRoute(app string) *route {
	rt := &route{app: app}
	rt.backends.Store(&[]*Backend{})
	ch := make(chan struct{})
	rt.changed.Store(&ch)
	return rt
}

// New returns a router with no apps.
func New(opts Options) *Router {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Router{logger: opts.Logger, accessLog: opts.AccessLog, trusted: opts.TrustedProxies, httpsPort: opts.HTTPSPort}
	r.table.Store(&table{exact: map[string]*route{}, wild: map[string]*route{}, apps: map[string]*route{}})
	return r
}

// SetHosts makes app reachable at hosts (and no others), keeping its
// backends, at once. A host "*.shop.example.com" is a wildcard (see
// table.lookup). An app with no backends yet answers 503.
func (r *Router) SetHosts(app string, hosts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.table.Load()
	next := old.without(app)
	rt := old.apps[app]
	if rt == nil {
		rt = newRoute(app)
		next.apps = maps.Clone(old.apps)
		next.apps[app] = rt
	}
	for _, h := range hosts {
		if parent, ok := strings.CutPrefix(h, "*."); ok {
			next.wild[NormalizeHost(parent)] = rt
		} else {
			next.exact[NormalizeHost(h)] = rt
		}
	}
	r.table.Store(next)
}

// RemoveApp stops routing to app; its backends are retired (drain them).
func (r *Router) RemoveApp(app string) {
	r.Swap(app, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.table.Load().without(app)
	next.apps = maps.Clone(next.apps)
	delete(next.apps, app)
	r.table.Store(next)
}

func (r *Router) findLocked(app string) *route { return r.table.Load().apps[app] }

// Swap replaces app's backend set with backends in one atomic step and
// returns the backends that left the set. When Swap returns, every request
// that picked one of those is counted in its InFlight, and no new request
// will pick it: drain them with Drain.
func (r *Router) Swap(app string, backends []*Backend) []*Backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.findLocked(app)
	if rt == nil {
		return nil
	}
	defer rt.notify()
	set := append([]*Backend(nil), backends...)
	old := rt.backends.Swap(&set)
	var removed []*Backend
	for _, b := range *old {
		if !contains(set, b) {
			// After the new set is stored: a request that registers on b
			// from now on sees retired and moves to the new set.
			b.retired.Store(true)
			removed = append(removed, b)
		}
	}
	return removed
}

// notify wakes the requests holding for a backend. Call with r.mu held.
func (rt *route) notify() {
	ch := make(chan struct{})
	close(*rt.changed.Swap(&ch))
}

// Expect tells the router that something under way (a deployment, the
// replacement of an instance) may bring app a backend, so requests that
// find none wait for it, up to the hold time. Call done when it is over.
func (r *Router) Expect(app string) (done func()) {
	r.mu.Lock()
	rt := r.findLocked(app)
	r.mu.Unlock()
	if rt == nil {
		return func() {}
	}
	rt.expecting.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			rt.expecting.Add(-1)
			r.mu.Lock()
			defer r.mu.Unlock()
			rt.notify() // waiters look again, and give up if nothing else comes
		})
	}
}

// RouteConfig is how the router treats one app's requests, from the
// settings of its live release.
type RouteConfig struct {
	// Hold is how long a request waits for a backend while the app has
	// none; zero answers 503 at once.
	Hold time.Duration
	// AccessLog writes a record of each request (see Options.AccessLog).
	AccessLog bool
}

// Configure applies c to app's requests, at once.
func (r *Router) Configure(app string, c RouteConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.findLocked(app); rt != nil {
		rt.hold.Store(int64(c.Hold))
		rt.accessLog.Store(c.AccessLog && r.accessLog != nil)
	}
}

// SetPolicy applies app's access restrictions at once: its traffic rules
// and whether plain HTTP is redirected to HTTPS.
func (r *Router) SetPolicy(app string, p access.Policy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt := r.findLocked(app); rt != nil {
		rt.access.Store(p.App.Compile())
		rt.httpsOnly.Store(p.HTTPSOnly)
	}
}

func contains(set []*Backend, b *Backend) bool {
	for _, x := range set {
		if x == b {
			return true
		}
	}
	return false
}

// Backends returns app's current backend set.
func (r *Router) Backends(app string) []*Backend {
	r.mu.Lock()
	rt := r.findLocked(app)
	r.mu.Unlock()
	if rt == nil {
		return nil
	}
	return *rt.backends.Load()
}

// acquire picks the backend with the fewest requests in flight, other than
// exclude, and counts the caller's request on it. When there is none, and
// something is bringing one (see Expect), it holds the request until a Swap
// brings one, for up to the app's hold time; nil when none came.
func (rt *route) acquire(ctx context.Context, exclude *Backend) *Backend {
	var timeout <-chan time.Time
	for {
		changed := *rt.changed.Load() // before the set: a Swap in between wakes us
		if b, ok := rt.tryAcquire(exclude); ok {
			return b
		}
		if rt.expecting.Load() == 0 {
			return nil // nothing will come: no point in waiting
		}
		if timeout == nil {
			t := time.NewTimer(time.Duration(rt.hold.Load()))
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// tryAcquire picks and counts a backend of the current set; ok is false
// when the set has none but exclude.
//
// The order of the two atomics here and in Swap is what makes draining
// exact: the request increments inflight, then reads retired; Swap stores
// the new set, then sets retired, and Drain reads inflight after that. So
// either Drain sees the request, or the request sees retired and retries on
// the new set.
func (rt *route) tryAcquire(exclude *Backend) (*Backend, bool) {
	for {
		set := *rt.backends.Load()
		if exclude != nil && contains(set, exclude) {
			set = without(set, exclude)
		}
		if len(set) == 0 {
			return nil, false
		}
		b := pick(set, rt.next.Add(1))
		b.inflight.Add(1)
		if !b.retired.Load() {
			return b, true
		}
		b.inflight.Add(-1)
	}
}

func without(set []*Backend, b *Backend) []*Backend {
	out := make([]*Backend, 0, len(set))
	for _, x := range set {
		if x != b {
			out = append(out, x)
		}
	}
	return out
}

// pick returns the backend with the fewest requests in flight, starting
// the scan at a rotating offset so ties are spread round-robin.
func pick(set []*Backend, start uint32) *Backend {
	n := len(set)
	best := set[int(start)%n]
	for i := 1; i < n; i++ {
		b := set[(int(start)+i)%n]
		if b.inflight.Load() < best.inflight.Load() {
			best = b
		}
	}
	return best
}

// ServeHTTP routes the request by its Host header. If the backend cannot
// take it (see retryable), it is tried once more on another backend.
// HealthPath is the router's own health endpoint, for a load balancer in
// front of the node: GET /healthz with a Host that is no app's (the
// node's address, as a balancer's probe sends it) answers 200 while the
// router serves, an upgrade included. An app's hosts pass every path, this
// one too, to the app.
const HealthPath = "/healthz"

type forwardedKey struct{}

// ServeForwarded serves a request that a peer node of a cluster forwarded
// over the authenticated peer link, for an app it runs no instance of:
// the app's access rules were applied at that node.
func (r *Router) ServeForwarded(w http.ResponseWriter, req *http.Request) {
	r.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), forwardedKey{}, true)))
}

// AppOf is the app served at host, "" for none.
func (r *Router) AppOf(host string) string {
	if rt := r.table.Load().lookup(NormalizeHost(host)); rt != nil {
		return rt.app
	}
	return ""
}

func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host := NormalizeHost(req.Host)
	rt := r.table.Load().lookup(host)
	if rt == nil && req.URL.Path == HealthPath && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		// A load balancer's probe of this node: the router answers it
		// itself, for any host that is no app's.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if why := r.notReady.Load(); why != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready: "+*why+"\n")
			return
		}
		io.WriteString(w, "ok\n")
		return
	}
	if rt == nil {
		r.logger.Debug("no app is served at this host; check the host name, or create the app with 'slipway apps create'", "host", host)
		writePage(w, http.StatusNotFound)
		return
	}
	start := time.Now()
	// A request a peer node forwarded had the app's access rules and its
	// https-only redirect applied there, where the client came in; that
	// node's X-Forwarded-For is believed.
	forwarded := req.Context().Value(forwardedKey{}) != nil
	a := &attempt{status: http.StatusOK, trustedPeer: forwarded || len(r.trusted) > 0 && access.IsTrusted(req.RemoteAddr, r.trusted)}
	if rt.accessLog.Load() {
		cw := &countingWriter{ResponseWriter: w}
		w = cw
		defer func() { r.logAccess(rt.app, req, a, cw, time.Since(start)) }()
	}
	defer func() {
		now := time.Now()
		rt.stats.observe(now, a.status, now.Sub(start))
	}()
	if m := rt.access.Load(); m != nil && !forwarded && !m.Allows(access.ClientIP(req.RemoteAddr, req.Header.Values("X-Forwarded-For"), r.trusted)) {
		a.status = http.StatusForbidden
		writePage(w, a.status)
		return
	}
	if rt.httpsOnly.Load() && !forwarded && !isHTTPS(req, a.trustedPeer) {
		a.status = http.StatusPermanentRedirect
		http.Redirect(w, req, r.httpsURL(req, host), a.status)
		return
	}
	b := rt.acquire(req.Context(), nil)
	if b == nil {
		a.status = http.StatusServiceUnavailable
		r.unavailable(w, rt)
		return
	}
	if req.Body != nil && req.Body != http.NoBody {
		a.body = &countingBody{ReadCloser: req.Body}
		req.Body = a.body
	}
	req = req.WithContext(context.WithValue(req.Context(), attemptKey{}, a))
	r.forward(rt.app, b, w, req, a)
	if a.err == nil {
		return
	}
	a.retried = true
	next := rt.acquire(req.Context(), b)
	if next == nil {
		a.status = errorStatus(req, a.err)
		writePage(w, a.status)
		return
	}
	r.forward(rt.app, next, w, req, a)
}

// unavailable answers 503 for an app with no ready backend; the operator
// learns why from the log, the visitor only that it is temporary.
func (r *Router) unavailable(w http.ResponseWriter, rt *route) {
	if rt.warned.shouldLog(time.Now()) {
		r.logger.Warn("app has no ready instance: requests get 503; if it is not deploying or restarting, deploy it with 'slipway deploy', and see 'slipway status'", "app", rt.app)
	}
	w.Header().Set("Retry-After", "5")
	writePage(w, http.StatusServiceUnavailable)
}

// NormalizeHost lower-cases a Host header and drops its port, the
// brackets of an IPv6 literal and any trailing dots, so
// "Promo.Example.com.:8080" finds "promo.example.com". It repeats until
// nothing changes, so that it is idempotent even on garbage like "[[]]"
// (found by FuzzHostRouting); a real host name takes one or two passes.
func NormalizeHost(h string) string {
	h = strings.ToLower(h)
	for {
		next := normalizeOnce(h)
		if next == h {
			return h
		}
		h = next
	}
}

func normalizeOnce(h string) string {
	if strings.IndexAny(h, ":[") < 0 { // the common case: a name without a port
		return strings.TrimRight(h, ".")
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimRight(h, ".")
}

// isHTTPS reports whether the client's request came over TLS: to this
// listener, or to a trusted proxy (trustedPeer) that says so in
// X-Forwarded-Proto.
func isHTTPS(req *http.Request, trustedPeer bool) bool {
	return req.TLS != nil || trustedPeer && strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https")
}

// httpsURL is the request's URL on the HTTPS listener.
func (r *Router) httpsURL(req *http.Request, host string) string {
	if r.httpsPort != "" && r.httpsPort != "443" {
		host = net.JoinHostPort(host, r.httpsPort)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "https://" + host + req.URL.RequestURI()
}
