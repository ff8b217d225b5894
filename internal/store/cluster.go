package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// ErrNoQuorum says that this node's member cannot reach a majority of the
// cluster's: it serves what it has, but changes nothing until it can.
var ErrNoQuorum = errors.New("this node cannot reach a majority of the cluster's etcd members, so it changes nothing now; the apps it runs go on serving; try again once the nodes see each other again, or at another node")

// ErrNameTaken refuses a node the name of another that runs, on an
// external cluster.
var ErrNameTaken = errors.New("another node has this name")

// ErrRegistered refuses to forget a node that is registered: it runs.
var ErrRegistered = errors.New("the node is registered")

// ErrExternal refuses what only a cluster of embedded members does, like
// admitting a member, on a node whose store is an external cluster.
var ErrExternal = errors.New("this node's store is an external etcd cluster: its nodes join through it (start each with the same --etcd-endpoints), and Slipway changes nothing of its membership")

// configurePeer makes the member one of a cluster: it dials its peers
// with the node's certificate and takes none without the cluster CA's.
func configurePeer(cfg *embed.Config, p *Peer) {
	cfg.PeerTLSInfo = transport.TLSInfo{CertFile: p.CertFile, KeyFile: p.KeyFile, TrustedCAFile: p.CAFile, ClientCertAuth: true}
	if p.URL != nil {
		cfg.AdvertisePeerUrls = []url.URL{*p.URL}
		cfg.InitialCluster = cfg.Name + "=" + p.URL.String()
	}
	if p.InitialCluster != "" {
		cfg.InitialCluster = p.InitialCluster
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
}

// addTimeout bounds AddLearner.
const addTimeout = 20 * time.Second

// Member is one etcd member of the node's cluster.
type Member struct {
	ID       uint64
	Name     string
	PeerURLs []string
	Learner  bool
}

// MemberID is this node's member id.
// On an external cluster, where the node has no member, it is the id
// its name gives (see nodeID).
func (s *Store) MemberID() uint64 {
	if s.external {
		return nodeID(s.node)
	}
	return uint64(s.etcd.Server.MemberID())
}

// Members lists the cluster's members.
// On an external cluster they are the nodes that registered.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	if s.external {
		return s.externalMembers(ctx)
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	resp, err := s.cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the cluster's members: %w", s.wrapCluster(err))
	}
	return membersOf(resp.Members), nil
}

func membersOf(ms []*etcdMember) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner})
	}
	return out
}

// AddLearner adds a member that does not vote yet at peerURL, and
// returns its id and the members with it. A learner does not count for
// the quorum until it is promoted (see PromoteLearners), so a node that
// never starts does not stop the cluster.
//
// etcd refuses a change of membership until every voting member has been
// up for a few seconds (a node just promoted has not), and a second
// learner while one has not caught up; those refusals are waited out, up
// to addTimeout.
func (s *Store) AddLearner(ctx context.Context, peerURL string) (uint64, []Member, error) {
	if s.external {
		return 0, nil, ErrExternal
	}
	ctx, cancel := context.WithTimeout(ctx, addTimeout)
	defer cancel()
	resp, err := s.cli.MemberAddAsLearner(ctx, []string{peerURL})
	for err != nil && waitable(err) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		resp, err = s.cli.MemberAddAsLearner(ctx, []string{peerURL})
	}
	if err != nil {
		return 0, nil, fmt.Errorf("adding a member at %s: %w", peerURL, s.wrapCluster(err))
	}
	return resp.Member.ID, membersOf(resp.Members), nil
}

// waitable reports whether etcd refused a new member for a while only:
// a voting member has not been up long enough, or the node that joined
// before is still a learner (etcd takes one at a time; it votes, and
// the next may join, once it has caught up: see PromoteLearners).
func waitable(err error) bool {
	return strings.Contains(err.Error(), "unhealthy cluster") || strings.Contains(err.Error(), "too many learner members")
}

// PromoteLearners makes every learner that has caught up a voting
// member; one that has not stays a learner until the next call.
func (s *Store) PromoteLearners(ctx context.Context) (promoted []Member, err error) {
	if s.external {
		return nil, nil // the external cluster's learners are not Slipway's
	}
	ms, err := s.Members(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if !m.Learner || m.Name == "" { // not started yet
			continue
		}
		ctx, cancel := bound(ctx)
		_, err := s.cli.MemberPromote(ctx, m.ID)
		cancel()
		if err == nil {
			promoted = append(promoted, m)
		}
	}
	return promoted, nil
}

// RemoveMember takes a member out of the cluster.
// On an external cluster it does nothing: the node had no member.
func (s *Store) RemoveMember(ctx context.Context, id uint64) error {
	if s.external {
		return nil
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	if _, err := s.cli.MemberRemove(ctx, id); err != nil {
		return fmt.Errorf("removing member %x: %w", id, s.wrapCluster(err))
	}
	return nil
}

// SetPeerURL changes this member's advertised peer URL: a node that ran
// alone gets the one its first peer reaches it at.
func (s *Store) SetPeerURL(ctx context.Context, peerURL string) error {
	if s.external {
		return nil
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	if _, err := s.cli.MemberUpdate(ctx, s.MemberID(), []string{peerURL}); err != nil {
		return fmt.Errorf("setting this member's peer URL to %s: %w", peerURL, s.wrapCluster(err))
	}
	return nil
}

func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, callTimeout)
}

// wrapCluster says why a call failed: the store stopped, or the member
// lost its majority.
func (s *Store) wrapCluster(err error) error {
	err = s.stopped.wrap(err)
	if err == nil {
		return nil
	}
	timedOut := errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "request timed out") || strings.Contains(err.Error(), "no leader") ||
		s.external && errors.Is(err, context.Canceled) // ended with the epoch (see contact.within)
	if timedOut && s.Clustered() && !s.HasQuorum() {
		return fmt.Errorf("%w (%v)", ErrNoQuorum, err)
	}
	return err
}

// Clustered reports whether the member has, or had, peers. A node on an
// external cluster always may have.
func (s *Store) Clustered() bool {
	return s.external || len(s.etcd.Server.Cluster().Members()) > 1
}

// HasQuorum reports whether the member knows a leader: a member cut off
// from the majority loses it after an election timeout. A node on an
// external cluster has one while the cluster answers its keep-alives.
func (s *Store) HasQuorum() bool {
	if s.external {
		return s.contact.since() < externalQuorumLapse
	}
	return s.etcd.Server.Leader() != 0
}

type etcdMember = etcdserverpb.Member

func jsonEncode(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// Node is a node's registration: it lives as long as the node's session
// lease, so a node that stops answering disappears from the records.
type Node struct {
	Name     string            `json:"name"`
	MemberID string            `json:"member_id"`
	APIURL   string            `json:"api_url"`
	PeerURL  string            `json:"peer_url,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// State is "ready", or "catching up" while it starts its apps' live
	// releases.
	State   string    `json:"state"`
	Started time.Time `json:"started"`
	Version string    `json:"version,omitempty"`
	// DirID names the data directory the node runs from, on an external
	// cluster, where a node claims its name (see RegisterNode); "" on
	// a cluster of embedded members, which admits each node by name.
	DirID string `json:"dir_id,omitempty"`
}

// Node states.
const (
	NodeReady      = "ready"
	NodeCatchingUp = "catching up"
	NodeDown       = "down"
	NodeJoining    = "joining"
)

func nodeKey(name string) string { return prefix + "nodes/" + name }

func memberNameKey(id string) string { return prefix + "member-names/" + id }

// MemberNames maps member ids (hex) to the names of their nodes.
func (s *Store) MemberNames(ctx context.Context) (map[string]string, error) {
	resp, err := s.cli.Get(ctx, prefix+"member-names/", clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix+"member-names/")] = string(kv.Value)
	}
	return out, nil
}

// RegisterNode records n under the node's session lease.
//
// On an external cluster (n.DirID set) nothing admitted the node by its
// name, so the registration claims it: a running node's name, held by a
// registration from another data directory, is refused with
// ErrNameTaken, as is a name whose member id (its hash, see nodeID) is
// another name's. Two nodes of one name would share their instance
// records (each would kill or forget the other's), their registration
// and their place in the election. A registration that names no data
// directory is of an earlier version, maybe this very node's, and is
// taken over.
func (s *Store) RegisterNode(ctx context.Context, n Node) error {
	n.MemberID = strconv.FormatUint(s.MemberID(), 16)
	b, err := jsonEncode(n)
	if err != nil {
		return err
	}
	// The node's name by its member id outlives the registration, so
	// that a node that is down is still called by its name.
	put := []clientv3.Op{clientv3.OpPut(nodeKey(n.Name), b, clientv3.WithLease(s.leaseID())),
		clientv3.OpPut(memberNameKey(n.MemberID), n.Name)}
	for {
		var cmps []clientv3.Cmp
		if n.DirID != "" {
			if cmps, err = s.nameClaim(ctx, n); err != nil {
				return err
			}
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(put...).Commit()
		if err != nil {
			return fmt.Errorf("registering node %s: %w", n.Name, s.wrapCluster(err))
		}
		if resp.Succeeded {
			return nil
		}
		// Another node registered between the read and the write:
		// look again.
	}
}

// nameClaim checks that n may take its name, and returns the conditions
// under which what it read still holds.
func (s *Store) nameClaim(ctx context.Context, n Node) ([]clientv3.Cmp, error) {
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(nodeKey(n.Name)), clientv3.OpGet(memberNameKey(n.MemberID))).Commit()
	if err != nil {
		return nil, fmt.Errorf("registering node %s: %w", n.Name, s.wrapCluster(err))
	}
	var cmps []clientv3.Cmp
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(nodeKey(n.Name)), "=", 0))
	} else {
		var cur Node
		if err := json.Unmarshal(kvs[0].Value, &cur); err == nil && cur.DirID != "" && cur.DirID != n.DirID {
			return nil, fmt.Errorf("%w: node %s runs already (its API at %s), from another data directory; give this node a name of its own with --node-name, or stop the other",
				ErrNameTaken, n.Name, cur.APIURL)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(nodeKey(n.Name)), "=", kvs[0].ModRevision))
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(memberNameKey(n.MemberID)), "=", 0))
	} else if other := string(kvs[0].Value); other != n.Name {
		return nil, fmt.Errorf("%w: the names %s and %s make the same member id %s; give this node another name with --node-name",
			ErrNameTaken, n.Name, other, n.MemberID)
	} else {
		cmps = append(cmps, clientv3.Compare(clientv3.Value(memberNameKey(n.MemberID)), "=", n.Name))
	}
	return cmps, nil
}

// Nodes lists the registered nodes, by name.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	return listJSON[Node](ctx, s, prefix+"nodes/")
}

// ForgetNode removes what the store keeps of a node that is gone: its
// registration, its name and its instance records.
//
// On an external cluster, a node that is registered is not gone: it came
// back since the caller saw it down (nothing fences it off, as removing
// an embedded member does), and ForgetNode removes nothing and returns
// ErrRegistered.
func (s *Store) ForgetNode(ctx context.Context, name, memberID string) error {
	recs, err := s.AllInstances(ctx)
	if err != nil {
		return err
	}
	ops := []clientv3.Op{clientv3.OpDelete(nodeKey(name)), clientv3.OpDelete(memberNameKey(memberID))}
	for _, r := range recs {
		if r.Node == name {
			ops = append(ops, clientv3.OpDelete(instanceKey(r.ID)))
		}
	}
	var cmps []clientv3.Cmp
	if s.external {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(nodeKey(name)), "=", 0))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("forgetting node %s: %w", name, s.wrapCluster(err))
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: node %s", ErrRegistered, name)
	}
	return nil
}

// JoinToken is a join token as the store keeps it: its hash. It lives
// under a lease of its lifetime, so an expired one is gone.
type JoinToken struct {
	ID      string    `json:"id"`
	Hash    string    `json:"hash"`
	Expires time.Time `json:"expires"`
}

func joinTokenKey(id string) string { return prefix + "join-tokens/" + id }

// CreateJoinToken records t until it expires.
func (s *Store) CreateJoinToken(ctx context.Context, t JoinToken) error {
	lease, err := s.cli.Grant(ctx, int64(time.Until(t.Expires)/time.Second)+1)
	if err != nil {
		return fmt.Errorf("making a join token: %w", s.wrapCluster(err))
	}
	return s.createJSON(ctx, joinTokenKey(t.ID), t, clientv3.WithLease(lease.ID))
}

// JoinToken reads a join token that has not expired.
func (s *Store) JoinToken(ctx context.Context, id string) (JoinToken, error) {
	var t JoinToken
	return t, s.getJSON(ctx, joinTokenKey(id), &t, &NotFoundError{Kind: "join token", ID: id})
}

// ClusterCA is the cluster CA's certificate and key, kept in the store so
// that every node can admit a new one.
type ClusterCA struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

const clusterCAKey = prefix + "cluster/ca"

// PutClusterCAOnce records the cluster CA unless one is recorded, and
// returns the recorded one.
func (s *Store) PutClusterCAOnce(ctx context.Context, ca ClusterCA) (ClusterCA, error) {
	err := s.createJSON(ctx, clusterCAKey, ca)
	if err == nil || !errors.Is(err, ErrExists) {
		return ca, err
	}
	return s.ClusterCA(ctx)
}

// ClusterCA reads the cluster CA.
func (s *Store) ClusterCA(ctx context.Context) (ClusterCA, error) {
	var ca ClusterCA
	return ca, s.getJSON(ctx, clusterCAKey, &ca, &NotFoundError{Kind: "cluster CA"})
}
