// Package router is the data plane: it maps host names to an app's live
// instances, swaps an app's backend set atomically, and drains old backends.
package router

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// Upstream connection settings.
const (
	dialTimeout = 5 * time.Second
	// upstreamIdleTimeout is shorter than the keep-alive of common app
	// servers (Tomcat 20 s, Jetty and the JDK's HttpServer 30 s), so the
	// router closes an idle connection before the app does and never races
	// the app's close with a new request.
	upstreamIdleTimeout = 4 * time.Second
	maxIdlePerBackend   = 512
)

// Backend is one instance as the router sees it: an address, its requests in
// flight, and whether it has been swapped out.
type Backend struct {
	// ID is the instance id.
	ID   string
	Addr string

	inflight atomic.Int64
	// retired is set once the backend is no longer in its app's set. A
	// request that registered itself on a retired backend gives it back and
	// picks again (see route.acquire).
	retired atomic.Bool

	// draining ends when the backend's drain starts: its upgraded
	// connections and streams are told to close then. stopped ends at the
	// drain deadline: what is still in flight is cut off. Both end with the
	// cause, which the log names.
	draining   context.Context
	startDrain context.CancelCauseFunc
	stopped    context.Context
	stop       context.CancelCauseFunc

	transport *http.Transport
	proxy     *httputil.ReverseProxy
}

// NewBackend returns a backend for the instance id listening on addr
// (host:port). Each backend has its own connection pool, closed with it.
func NewBackend(id, addr string) *Backend {
	return newBackend(id, addr, (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext)
}

// NewDialBackend returns a backend reached by dial rather than at an
// address: a node of a cluster's forwarder (see package cluster), which
// is in the daemon's own memory, so that no app can reach it.
func NewDialBackend(id string, dial func(ctx context.Context) (net.Conn, error)) *Backend {
	return newBackend(id, id, func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) })
}

func newBackend(id, addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Backend {
	b := &Backend{ID: id, Addr: addr}
	b.draining, b.startDrain = context.WithCancelCause(context.Background())
	b.stopped, b.stop = context.WithCancelCause(context.Background())
	b.transport = &http.Transport{
		DialContext:         dial,
		MaxIdleConns:        maxIdlePerBackend,
		MaxIdleConnsPerHost: maxIdlePerBackend,
		IdleConnTimeout:     upstreamIdleTimeout,
	}
	target := &url.URL{Scheme: "http", Host: addr}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the app sees its public host name
			setForwarded(pr)
		},
		Transport:      b.transport,
		ErrorHandler:   proxyError,
		ModifyResponse: onResponse,
		ErrorLog:       discardLog,
		BufferPool:     buffers,
	}
	return b
}

// setForwarded sets X-Forwarded-For, -Proto and -Host. What a client sent
// in them, in X-Real-IP or in Forwarded is dropped, unless the peer is a
// trusted proxy: then its chain is kept (with the peer added) and its word
// on the address, the scheme and the host.
func setForwarded(pr *httputil.ProxyRequest) {
	a, _ := pr.In.Context().Value(attemptKey{}).(*attempt)
	trusted := a != nil && a.trustedPeer
	if trusted {
		pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	}
	pr.SetXForwarded()
	if !trusted {
		pr.Out.Header.Del("X-Real-IP")
		pr.Out.Header.Del("Forwarded")
		return
	}
	for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
		if v := pr.In.Header.Get(h); v != "" {
			pr.Out.Header.Set(h, v)
		}
	}
}

// InFlight is the number of requests the backend is serving now.
func (b *Backend) InFlight() int64 { return b.inflight.Load() }

// Close drops the backend's idle upstream connections. Call it after the
// instance has stopped.
func (b *Backend) Close() { b.transport.CloseIdleConnections() }
