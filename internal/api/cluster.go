package api

import (
	"context"
	"net/http"
	"time"

	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/logs"
)

// Cluster is the node's part in its cluster, as the API sees it.
type Cluster interface {
	// JoinToken makes a join token good for ttl.
	JoinToken(ctx context.Context, ttl time.Duration) (string, time.Time, error)
	// Admit admits a joining node; the request carries its join token.
	Admit(ctx context.Context, req cluster.JoinRequest) (cluster.JoinResponse, error)
	Nodes(ctx context.Context) ([]cluster.NodeStatus, error)
	RemoveNode(ctx context.Context, name string) error
	// Forward carries a request to the coordinator, unless this node is
	// the coordinator (false: the request is this node's to handle).
	Forward(w http.ResponseWriter, r *http.Request) (bool, error)
	// CheckQuorum fails, wrapping store.ErrNoQuorum, on a node cut off
	// from the majority of its cluster.
	CheckQuorum() error
	// PeerLogs streams the same log request from every other node.
	PeerLogs(ctx context.Context, r *http.Request) <-chan logs.Line
}

// JoinTokenRequest is the body of POST /api/v1/admin/join-token.
type JoinTokenRequest struct {
	// TTL is how long the token is good for, like "1h"; an hour when
	// empty.
	TTL string `json:"ttl,omitempty"`
}

// JoinToken is a new join token, shown once.
type JoinToken struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// Node is a node of the cluster as the API shows it.
type Node struct {
	Name      string            `json:"name"`
	APIURL    string            `json:"api_url,omitempty"`
	PeerURL   string            `json:"peer_url,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	State     string            `json:"state"`
	Apps      int               `json:"apps"`
	Instances int               `json:"instances"`
	// Self is the node that answered.
	Self bool `json:"self,omitempty"`
	// Coordinator is the elected coordinator, which carries out changes.
	Coordinator bool `json:"coordinator,omitempty"`
}

func nodeOf(n cluster.NodeStatus) Node {
	return Node{Name: n.Name, APIURL: n.APIURL, PeerURL: n.PeerURL, Labels: n.Labels, State: n.State,
		Apps: n.Apps, Instances: n.Instances, Self: n.Self, Coordinator: n.Coordinator}
}

func (s *Server) clusterRoutes() {
	if s.opts.Cluster == nil {
		return
	}
	s.route("POST /api/v1/admin/join-token", scopeAdmin, s.joinToken)
	// The join token is the joining node's credential: it is checked by
	// Admit, not by the API's tokens.
	s.route("POST /api/v1/cluster/join", scopePublic, s.join)
	s.route("GET /api/v1/nodes", scopeAdmin, s.listNodes)
	s.route("DELETE /api/v1/nodes/{name}", scopeAdmin, s.removeNode)
}

func (s *Server) joinToken(w http.ResponseWriter, r *http.Request) error {
	var req JoinTokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ttl := cluster.DefaultTokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return errorf(http.StatusBadRequest, "ttl %q: want a duration like 30m or 24h", req.TTL)
		}
		ttl = d
	}
	tok, exp, err := s.opts.Cluster.JoinToken(r.Context(), ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, JoinToken{Token: tok, Expires: exp})
	return nil
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) error {
	var req cluster.JoinRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	resp, err := s.opts.Cluster.Admit(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.opts.Cluster.Nodes(r.Context())
	if err != nil {
		return err
	}
	out := make([]Node, 0, len(ns))
	for _, n := range ns {
		out = append(out, nodeOf(n))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Cluster.RemoveNode(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
