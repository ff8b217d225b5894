package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/store"
)

// ErrNoCoordinator says that no coordinator is elected at the moment: a
// short while after the last one stopped, or on a node cut off from the
// majority.
var ErrNoCoordinator = errors.New("no coordinator is elected at the moment (one stopped a few seconds ago, or this node cannot reach the majority of the cluster); try again in a few seconds, or at another node")

// apiPrefix is where a node's peer link takes API requests forwarded by
// the other nodes, for the coordinator to carry out.
const apiPrefix = "/slipway/api"

type fromPeerKey struct{}

// FromPeer reports whether a request came over the peer link, forwarded
// by another node that has checked its client's address against the
// app's access rules already.
func FromPeer(r *http.Request) bool { return r.Context().Value(fromPeerKey{}) != nil }

// Campaign runs this node for coordinator until the cluster closes; each
// time it is elected, lead runs with a context that ends when it stops
// being coordinator.
func (c *Cluster) Campaign(lead func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		safego.Run(c.log, "campaign for coordinator", func() {
			c.st.Elect(c.ctx, func(ctx context.Context) {
				c.leading.Store(true)
				defer c.leading.Store(false)
				c.log.Info("cluster: this node is the coordinator")
				lead(ctx)
				<-ctx.Done()
				c.log.Info("cluster: this node is no longer the coordinator")
			})
		})
	}()
}

// SetAPI gives the peer link the node's API, for requests forwarded by
// other nodes.
func (c *Cluster) SetAPI(h http.Handler) { c.api.Store(&h) }

// Forward carries a request that changes something to the coordinator,
// over the peer link; false when this node is the coordinator (or alone)
// and carries it out itself.
func (c *Cluster) Forward(w http.ResponseWriter, r *http.Request) (bool, error) {
	if !c.st.Clustered() || c.leading.Load() || FromPeer(r) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	name, err := c.st.Coordinator(ctx)
	cancel()
	if err != nil {
		return true, fmt.Errorf("finding the coordinator: %w", err)
	}
	if name == "" {
		return true, ErrNoCoordinator
	}
	if name == c.opts.Name {
		return false, nil // elected a moment ago
	}
	target, err := c.peerOf(r.Context(), name)
	if err != nil {
		return true, err
	}
	proxy, err := c.proxyTo(target)
	if err != nil {
		return true, err
	}
	proxy.ServeHTTP(w, r)
	return true, nil
}

// peerOf is the peer URL of the named node.
func (c *Cluster) peerOf(ctx context.Context, name string) (*url.URL, error) {
	nodes, err := c.st.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.Name == name && n.PeerURL != "" {
			return url.Parse(n.PeerURL)
		}
	}
	return nil, fmt.Errorf("%w: node %s is not registered", ErrNoCoordinator, name)
}

// proxyTo forwards to a peer's API with this node's certificate.
func (c *Cluster) proxyTo(target *url.URL) (*httputil.ReverseProxy, error) {
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path = apiPrefix + pr.In.URL.Path
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target.Host
		},
		Transport:     tr,
		FlushInterval: -1, // a followed deployment streams
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, fmt.Sprintf(`{"error":%q}`, "forwarding to the coordinator: "+err.Error()), http.StatusBadGateway)
		},
	}, nil
}

// transport is the peer link's client side, made once.
func (c *Cluster) transport() (*http.Transport, error) {
	if t := c.tr.Load(); t != nil {
		return t, nil
	}
	cfg, err := clientTLS(c.files)
	if err != nil {
		return nil, err
	}
	t := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		ResponseHeaderTimeout: 0, TLSHandshakeTimeout: 10 * time.Second}
	c.tr.Store(t)
	return t, nil
}

// servePeerAPI serves an API request forwarded by a peer.
func (c *Cluster) servePeerAPI(w http.ResponseWriter, r *http.Request) {
	h := c.api.Load()
	if h == nil {
		http.Error(w, `{"error":"the node is starting"}`, http.StatusServiceUnavailable)
		return
	}
	r2 := r.WithContext(context.WithValue(r.Context(), fromPeerKey{}, true))
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, apiPrefix)
	r2.URL.RawPath = ""
	(*h).ServeHTTP(w, r2)
}

// CheckQuorum fails on a node cut off from the majority of its cluster:
// it changes nothing then, and says why.
func (c *Cluster) CheckQuorum() error {
	if c.st.Clustered() && !c.st.HasQuorum() {
		return fmt.Errorf("node %s: %w", c.opts.Name, store.ErrNoQuorum)
	}
	return nil
}
