package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

// PeerRequest is r marked as come over the peer link (see FromPeer): the
// peer link's server marks each request it takes from a peer.
func PeerRequest(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), fromPeerKey{}, true))
}

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
//
// A coordinator that does not answer (it died a moment ago, and its
// successor is elected once its lease lapses) is waited out, up to
// forwardWait: the request goes to its successor then.
func (c *Cluster) Forward(w http.ResponseWriter, r *http.Request) (bool, error) {
	if !c.st.Clustered() || c.leading.Load() && c.st.HasQuorum() || FromPeer(r) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), forwardWait)
	defer cancel()
	for {
		target, err := c.coordinatorURL(ctx)
		if err == nil && target == nil {
			return false, nil // this node, elected a moment ago
		}
		if err == nil && reachable(ctx, target) {
			proxy, err := c.proxyTo(target)
			if err != nil {
				return true, err
			}
			proxy.ServeHTTP(w, r)
			return true, nil
		}
		if errors.Is(err, store.ErrNoQuorum) {
			return true, err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return true, err
			}
			return true, ErrNoCoordinator
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// forwardWait bounds the wait for a coordinator that answers.
const forwardWait = 30 * time.Second

// coordinatorURL is the peer URL of the coordinator; nil when it is this
// node.
func (c *Cluster) coordinatorURL(ctx context.Context) (*url.URL, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name, err := c.st.Coordinator(cctx)
	if err != nil {
		return nil, fmt.Errorf("finding the coordinator: %w", err)
	}
	if name == "" {
		return nil, ErrNoCoordinator
	}
	if name == c.opts.Name {
		return nil, nil
	}
	return c.peerOf(ctx, name)
}

// reachable reports whether a peer takes connections.
func reachable(ctx context.Context, u *url.URL) bool {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return false
	}
	conn.Close()
	return true
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
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(map[string]string{"error": "the coordinator did not answer (" + err.Error() + "); see whether the change was made with 'slipway deployments', and try again"})
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
	r2 := PeerRequest(r)
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
