package router

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDrainTimeout bounds the wait for an old backend's requests in flight.
const DefaultDrainTimeout = 30 * time.Second

// drainPoll is how often Drain looks at the in-flight counters.
const drainPoll = 10 * time.Millisecond

// Options configures a Router.
type Options struct {
	Logger *slog.Logger
}

// Router routes requests by Host to the backends of an app.
type Router struct {
	logger *slog.Logger
	// hosts maps a lower-case host name (no port) to its app's route. The
	// map is never changed in place: writers copy it under mu and store the
	// copy, so the request path reads it without a lock.
	hosts atomic.Pointer[map[string]*route]
	mu    sync.Mutex // serialises writers of hosts
}

// route is one app's backend set.
type route struct {
	app string
	// backends is replaced as a whole by Swap; never modified in place.
	backends atomic.Pointer[[]*Backend]
	next     atomic.Uint32 // where the fewest-in-flight scan starts
}

// New returns a router with no apps.
func New(opts Options) *Router {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Router{logger: opts.Logger}
	r.hosts.Store(&map[string]*route{})
	return r
}

// SetHosts makes app reachable at hosts (and no others), keeping its
// backends. An app with no backends yet answers 503.
func (r *Router) SetHosts(app string, hosts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.hosts.Load()
	rt := r.findLocked(app)
	if rt == nil {
		rt = &route{app: app}
		rt.backends.Store(&[]*Backend{})
	}
	next := make(map[string]*route, len(old)+len(hosts))
	for h, x := range old {
		if x.app != app {
			next[h] = x
		}
	}
	for _, h := range hosts {
		next[NormalizeHost(h)] = rt
	}
	r.hosts.Store(&next)
}

// RemoveApp stops routing to app and returns its backends, now retired.
func (r *Router) RemoveApp(app string) []*Backend {
	old := r.Swap(app, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]*route)
	for h, x := range *r.hosts.Load() {
		if x.app != app {
			next[h] = x
		}
	}
	r.hosts.Store(&next)
	return old
}

func (r *Router) findLocked(app string) *route {
	for _, rt := range *r.hosts.Load() {
		if rt.app == app {
			return rt
		}
	}
	return nil
}

// Swap replaces app's backend set with backends in one atomic step and
// returns the backends that left the set. When Swap returns, every request
// that picked one of those is counted in its InFlight, and no new request
// will pick it: drain them with Drain.
func (r *Router) Swap(app string, backends []*Backend) []*Backend {
	r.mu.Lock()
	rt := r.findLocked(app)
	r.mu.Unlock()
	if rt == nil {
		return nil
	}
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

// Drain waits until no request is in flight on backends or the timeout
// passes, and returns how many requests were still in flight then.
func Drain(ctx context.Context, backends []*Backend, timeout time.Duration) int64 {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		var n int64
		for _, b := range backends {
			n += b.InFlight()
		}
		if n == 0 {
			return 0
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
}

// acquire picks the backend with the fewest requests in flight and counts
// the caller's request on it; nil when the app has no backend.
//
// The order of the two atomics here and in Swap is what makes draining
// exact: the request increments inflight, then reads retired; Swap stores
// the new set, then sets retired, and Drain reads inflight after that. So
// either Drain sees the request, or the request sees retired and retries on
// the new set.
func (rt *route) acquire() *Backend {
	for {
		set := *rt.backends.Load()
		if len(set) == 0 {
			return nil
		}
		b := pick(set, rt.next.Add(1))
		b.inflight.Add(1)
		if !b.retired.Load() {
			return b
		}
		b.inflight.Add(-1)
	}
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

// ServeHTTP routes the request by its Host header.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host := NormalizeHost(req.Host)
	rt := (*r.hosts.Load())[host]
	if rt == nil {
		writePage(w, http.StatusNotFound, "No app here", "No app is served at "+host+". Check the host name, or create the app with 'slipway apps create'.")
		return
	}
	b := rt.acquire()
	if b == nil {
		w.Header().Set("Retry-After", "5")
		writePage(w, http.StatusServiceUnavailable, "App not running", "App "+rt.app+" has no instance running. Deploy it with 'slipway deploy'.")
		return
	}
	defer b.inflight.Add(-1)
	b.proxy.ServeHTTP(w, req)
}

// NormalizeHost lower-cases a Host header and drops its port and any
// trailing dot, so "Promo.Example.com.:8080" finds "promo.example.com".
func NormalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
