package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Status is an app's state at a glance.
type Status struct {
	App     string `json:"app"`
	Release int    `json:"release"`
	Wanted  int    `json:"wanted"`
	Ready   int    `json:"ready"`
	// CrashLooping is true while instances keep exiting soon after start.
	CrashLooping bool `json:"crash_looping"`
	// LastDeployment is the app's latest deployment, without its events.
	LastDeployment *Deployment `json:"last_deployment,omitempty"`
	// Runtime is how the live release runs on this node; left out before
	// the first release.
	Runtime *Runtime `json:"runtime,omitempty"`
	// Traffic is the last minute's requests through the router.
	Traffic   Traffic    `json:"traffic"`
	Instances []Instance `json:"instances"`
	// Node is the node that answered; Nodes, on a node of a cluster,
	// are the app's instances on every node (Instances are this node's).
	Node  string          `json:"node,omitempty"`
	Nodes []NodeInstances `json:"nodes,omitempty"`
}

// NodeInstances are an app's instances on one node of a cluster, as the
// store records them.
type NodeInstances struct {
	Node      string         `json:"node"`
	Instances []NodeInstance `json:"instances"`
}

// NodeInstance is an instance on a node of a cluster.
type NodeInstance struct {
	ID      string `json:"id"`
	Release int    `json:"release"`
	Port    int    `json:"port"`
	PID     int    `json:"pid"`
}

// nodesOf groups app's instance records by node.
func (s *Server) nodesOf(ctx context.Context, app string) ([]NodeInstances, error) {
	recs, err := s.opts.Store.AllInstances(ctx)
	if err != nil {
		return nil, err
	}
	byNode := map[string][]NodeInstance{}
	for _, rec := range recs {
		if rec.App == app {
			byNode[rec.Node] = append(byNode[rec.Node], NodeInstance{ID: rec.ID, Release: rec.Release, Port: rec.Port, PID: rec.PID})
		}
	}
	out := make([]NodeInstances, 0, len(byNode))
	for n, insts := range byNode {
		out = append(out, NodeInstances{Node: n, Instances: insts})
	}
	slices.SortFunc(out, func(a, b NodeInstances) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Status(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// Status is app's state at a glance, as GET …/status answers.
func (s *Server) Status(ctx context.Context, app string) (Status, error) {
	a, err := s.opts.Store.App(ctx, app)
	if err != nil {
		return Status{}, err
	}
	st := Status{App: a.Name, Release: a.CurrentRelease, Wanted: a.Settings.WithDefaults().Instances,
		Instances: instancesOf(s.opts.Deploys.Instances(a.Name)), Traffic: trafficOf(s.opts.Deploys.Traffic(a.Name))}
	for _, i := range st.Instances {
		if i.State == deploy.StateReady {
			st.Ready++
		}
		st.CrashLooping = st.CrashLooping || strings.HasPrefix(i.Note, "crash-looping")
	}
	if st.Runtime, err = s.runtime(ctx, a); err != nil {
		return Status{}, err
	}
	if s.opts.Cluster != nil && s.opts.Store.Clustered() {
		st.Node = s.opts.Store.NodeName()
		if st.Nodes, err = s.nodesOf(ctx, a.Name); err != nil {
			return Status{}, err
		}
	}
	deps, err := s.opts.Store.Deployments(ctx, a.Name)
	if err != nil {
		return Status{}, err
	}
	if len(deps) > 0 {
		d := deps[len(deps)-1]
		d.Events = nil
		st.LastDeployment = new(deploymentOf(d))
	}
	return st, nil
}
