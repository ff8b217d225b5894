package store

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Rollout is a deployment across the nodes of a cluster, as the
// coordinator drives it and the nodes follow it: each node starts and
// warms up the release (phase warm), and when every one is warm, every
// one switches (phase swap); a node that fails makes every node drop
// what it started (phase abort).
type Rollout struct {
	App        string `json:"app"`
	Deployment int    `json:"deployment"`
	Release    int    `json:"release"`
	// Instances is how many instances each node runs.
	Instances int `json:"instances"`
	// Nodes are the nodes that take part.
	Nodes       []string  `json:"nodes"`
	Phase       string    `json:"phase"`
	Coordinator string    `json:"coordinator"`
	Started     time.Time `json:"started"`
}

// Phases of a Rollout, and states of a NodeRollout.
const (
	PhaseWarm  = "warm"
	PhaseSwap  = "swap"
	PhaseAbort = "abort"

	NodeWarming  = "warming"
	NodeWarm     = "warm"
	NodeFailed   = "failed"
	NodeSwitched = "switched"
	NodeAborted  = "aborted"
)

// NodeRollout is one node's part in a rollout.
type NodeRollout struct {
	Node       string    `json:"node"`
	Deployment int       `json:"deployment"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
}

func rolloutKey(app string) string { return prefix + "rollout/" + app }
func nodeRolloutPrefix(app string) string {
	return prefix + "rollout-nodes/" + app + "/"
}

// PutRollout writes a rollout.
func (s *Store) PutRollout(ctx context.Context, r Rollout) error {
	return s.putJSON(ctx, rolloutKey(r.App), r)
}

// Rollouts lists the rollouts under way.
func (s *Store) Rollouts(ctx context.Context) ([]Rollout, error) {
	return listJSON[Rollout](ctx, s, prefix+"rollout/")
}

// EndRollout removes app's rollout with the nodes' reports.
func (s *Store) EndRollout(ctx context.Context, app string) error {
	_, err := s.cli.Txn(ctx).Then(clientv3.OpDelete(rolloutKey(app)), clientv3.OpDelete(nodeRolloutPrefix(app), clientv3.WithPrefix())).Commit()
	if err != nil {
		return fmt.Errorf("ending the rollout of %s: %w", app, s.wrapCluster(err))
	}
	return nil
}

// PutNodeRollout writes this node's report on app's rollout.
func (s *Store) PutNodeRollout(ctx context.Context, app string, n NodeRollout) error {
	n.Node = s.node
	return s.putJSON(ctx, nodeRolloutPrefix(app)+s.node, n)
}

// NodeRollouts reads the nodes' reports on app's rollout, by node.
func (s *Store) NodeRollouts(ctx context.Context, app string) (map[string]NodeRollout, error) {
	list, err := listJSON[NodeRollout](ctx, s, nodeRolloutPrefix(app))
	out := make(map[string]NodeRollout, len(list))
	for _, n := range list {
		out[n.Node] = n
	}
	return out, err
}

// NodeName is this node's name.
func (s *Store) NodeName() string { return s.node }
