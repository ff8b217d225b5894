package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/version"
)

func (c ClusterConfig) validate() error {
	if c.NodeName != "" {
		if err := cluster.ValidateName(c.NodeName); err != nil {
			return fmt.Errorf("--node-name: %w", err)
		}
	}
	if c.PeerPort < 0 || c.PeerPort > 65535 {
		return fmt.Errorf("--peer-port %d: want a port from 1 to 65535", c.PeerPort)
	}
	if _, err := cluster.ParseLabels(c.Labels); err != nil {
		return err
	}
	if c.Join != "" {
		u, err := url.Parse(c.Join)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--join %q: want a node's API URL, like http://10.0.0.5:7070", c.Join)
		}
		if c.JoinToken == "" {
			return fmt.Errorf("--join needs --join-token: make one with 'slipway admin join-token' on a node of the cluster")
		}
	}
	if err := c.Etcd.validate(c.Join); err != nil {
		return err
	}
	if c.Advertise != "" && strings.ContainsAny(c.Advertise, ":/ ") && net.ParseIP(c.Advertise) == nil {
		return fmt.Errorf("--advertise-address %q: want a host name or an IP address, without a port", c.Advertise)
	}
	return nil
}

// nodeName is the node's name: --node-name, else the host's name made a
// DNS label, else "node".
func (s *server) nodeName() string {
	if s.c.Cluster.NodeName != "" {
		return s.c.Cluster.NodeName
	}
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	if cluster.ValidateName(h) != nil {
		return "node"
	}
	return h
}

// advertise is the host peers reach this node at.
func (s *server) advertise() string {
	if s.c.Cluster.Advertise != "" {
		return s.c.Cluster.Advertise
	}
	host, _, _ := net.SplitHostPort(s.c.APIListen)
	return host
}

func (s *server) clusterOptions() cluster.Options {
	labels, _ := cluster.ParseLabels(s.c.Cluster.Labels) // checked by Validate
	scheme := "http"
	if s.apiTLS != nil {
		scheme = "https"
	}
	return cluster.Options{DataDir: s.c.DataDir, Name: s.nodeName(), Advertise: s.advertise(), PeerPort: s.c.Cluster.PeerPort,
		APIURL: scheme + "://" + net.JoinHostPort(s.advertise(), port(s.c.APIListen)), Labels: labels,
		Join: s.c.Cluster.Join, JoinToken: s.c.Cluster.JoinToken, External: s.c.Cluster.Etcd.external(),
		Version: version.Get().String(), Logger: s.log}
}

// maxEtcdEndpoints bounds --etcd-endpoints.
const maxEtcdEndpoints = 16

func (e EtcdConfig) validate(join string) error {
	if !e.external() {
		if e.CAFile != "" || e.CertFile != "" || e.KeyFile != "" {
			return fmt.Errorf("--etcd-cacert, --etcd-cert and --etcd-key go with --etcd-endpoints, which is not given")
		}
		return nil
	}
	if join != "" {
		return fmt.Errorf("--join and --etcd-endpoints: a node on an external etcd cluster joins by being its client; start every node with the same --etcd-endpoints, and no --join")
	}
	if len(e.Endpoints) > maxEtcdEndpoints {
		return fmt.Errorf("--etcd-endpoints: at most %d endpoints, not %d", maxEtcdEndpoints, len(e.Endpoints))
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		return fmt.Errorf("--etcd-cert and --etcd-key go together: give both, or neither")
	}
	scheme := ""
	for _, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" && u.Scheme != "unix" || u.Path != "" && u.Scheme != "unix" || u.User != nil || u.RawQuery != "" {
			return fmt.Errorf("--etcd-endpoints %q: want an etcd client URL, like https://10.0.0.5:2379 (or unix:///run/etcd.sock)", ep)
		}
		switch u.Scheme {
		case "https", "unix":
		case "http":
			// The store holds every secret, and what it says is run:
			// no plain TCP, not even to loopback, where any local user
			// can listen on the port while etcd is down or restarts
			// (the client reconnects to whatever answers there).
			return fmt.Errorf("--etcd-endpoints %q: no plain http: the store holds every secret, and a local user can listen on a loopback port while etcd is down; reach etcd over https:// with --etcd-cacert (and --etcd-cert and --etcd-key), or over unix://", ep)
		default:
			return fmt.Errorf("--etcd-endpoints %q: want https:// or unix://", ep)
		}
		// The etcd client picks its transport security by the first
		// endpoint, for every endpoint.
		if scheme != "" && u.Scheme != scheme {
			return fmt.Errorf("--etcd-endpoints: %s:// and %s:// together; give endpoints of the same scheme (the etcd client secures them all as it does the first)", scheme, u.Scheme)
		}
		scheme = u.Scheme
	}
	return nil
}

// checkSockets refuses a plain unix:// endpoint whose folder other users
// may write in: while etcd is down, one of them could put a socket of
// their own at its path and be the store. Over TLS, the server's
// certificate says who it is, wherever its socket is.
func (e EtcdConfig) checkSockets() error {
	if e.CAFile != "" {
		return nil
	}
	for _, ep := range e.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "unix" {
			continue
		}
		dir := filepath.Dir(filepath.Join(u.Host, u.Path))
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("--etcd-endpoints %q: %w", ep, err)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("--etcd-endpoints %q: other users may write in %s (mode %s), and could put a socket of their own there while etcd is down; keep etcd's socket in a folder only its owner writes in, or reach it over TLS with --etcd-cacert", ep, dir, fi.Mode())
		}
	}
	return nil
}

// etcdTLS is the client TLS of the external cluster: nil for plain
// endpoints without a client certificate.
func (e EtcdConfig) etcdTLS() (*tls.Config, error) {
	tlsNeeded := e.CAFile != "" || e.CertFile != ""
	for _, ep := range e.Endpoints {
		tlsNeeded = tlsNeeded || strings.HasPrefix(ep, "https://")
	}
	if !tlsNeeded {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		b, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cacert: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--etcd-cacert %s: no PEM certificate in it", e.CAFile)
		}
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert and --etcd-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// storeOptions are the store's options: the embedded member, or the
// external cluster.
func (s *server) storeOptions(peer *store.Peer) (store.Options, error) {
	opts := store.Options{Dir: s.c.DataDir, Debug: s.c.Debug, Logger: s.log, Node: s.nodeName(), Peer: peer}
	if e := s.c.Cluster.Etcd; e.external() {
		if err := e.checkSockets(); err != nil {
			return opts, err
		}
		cfg, err := e.etcdTLS()
		if err != nil {
			return opts, err
		}
		opts.Peer, opts.External = nil, &store.External{Endpoints: e.Endpoints, TLS: cfg}
	}
	return opts, nil
}
