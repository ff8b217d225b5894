package daemon

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/slipway-dev/slipway/internal/cluster"
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
		Join: s.c.Cluster.Join, JoinToken: s.c.Cluster.JoinToken, Version: version.Get().String(), Logger: s.log}
}
