package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/internal/safego"
	"github.com/slipway-dev/slipway/internal/store"
)

// Defaults.
const (
	// DefaultPeerPort is the peer link's port (etcd and node to node).
	DefaultPeerPort = 7071
	// promoteEvery is how often a node promotes the learners that have
	// caught up.
	promoteEvery = 2 * time.Second
	// MaxLabels and the bounds of a label.
	MaxLabels        = 32
	maxLabelKeyBytes = 63
	maxLabelValBytes = 255
)

// ErrNotClustered, ErrNodeAlive and ErrSelf are the refusals of the node
// verbs.
var (
	ErrNodeAlive = errors.New("the node is alive")
	ErrSelf      = errors.New("a node cannot remove itself")
	ErrNoNode    = errors.New("no such node")
	ErrNoAddress = errors.New("no address to advertise to peers")
)

// Options configures a node's part in its cluster.
type Options struct {
	DataDir string
	// Name is the node's name, unique in its cluster.
	Name string
	// Advertise is the host peers reach this node at.
	Advertise string
	// PeerPort is the peer link's port; DefaultPeerPort when 0.
	PeerPort int
	// APIURL is the node's API, as a CLI reaches it (shown by 'nodes').
	APIURL string
	Labels map[string]string
	// Join is the API URL of a node of the cluster to join, with
	// JoinToken; only with an empty data directory.
	Join, JoinToken string
	// External says that the store is an external etcd cluster: the
	// node joins by being its client, the cluster CA is the one in the
	// store (the first node makes it), and the peer link opens at start.
	External bool
	Version  string
	Logger   *slog.Logger
}

// ParseLabels reads k=v pairs, bounded.
func ParseLabels(pairs []string) (map[string]string, error) {
	if len(pairs) > MaxLabels {
		return nil, fmt.Errorf("--label: at most %d labels, not %d", MaxLabels, len(pairs))
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || len(k) > maxLabelKeyBytes || len(v) > maxLabelValBytes || strings.ContainsFunc(p, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			return nil, fmt.Errorf("--label %q: want KEY=VALUE, printable ASCII without spaces, a key of at most %d bytes and a value of at most %d, like zone=west", p, maxLabelKeyBytes, maxLabelValBytes)
		}
		out[k] = v
	}
	return out, nil
}

// state is what a node keeps of its cluster, in <data dir>/cluster/state.json.
type state struct {
	// MemberName is its etcd member's name.
	MemberName string `json:"member_name"`
	// PeerURL is set once the node has (or had) peers.
	PeerURL string `json:"peer_url,omitempty"`
	// InitialCluster is the members a joining node starts with, used
	// until its store exists.
	InitialCluster string `json:"initial_cluster,omitempty"`
	// DirID names the data directory on an external cluster, where the
	// node's registration claims its name (see store.RegisterNode).
	DirID string `json:"dir_id,omitempty"`
}

func stateOf(name, peerURL string, jr JoinResponse) state {
	var pairs []string
	for _, m := range jr.Members {
		for _, u := range m.PeerURLs {
			pairs = append(pairs, m.Name+"="+u)
		}
	}
	return state{MemberName: name, PeerURL: peerURL, InitialCluster: strings.Join(pairs, ",")}
}

func statePath(dataDir string) string { return filepath.Join(dataDir, "cluster", "state.json") }

func readState(dataDir string) (state, error) {
	var s state
	b, err := os.ReadFile(statePath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func (s state) write(dataDir string) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return writeFile(statePath(dataDir), b)
}

// Cluster is a node's part in its cluster: the peer link, admissions,
// the node's registration.
type Cluster struct {
	opts  Options
	log   *slog.Logger
	files TLSFiles

	// etcd is the member's peer handler, once it runs; api the node's API.
	etcd atomic.Pointer[http.Handler]
	api  atomic.Pointer[http.Handler]
	// tr is the peer link's client transport, once made.
	tr atomic.Pointer[http.Transport]
	// arts is the node's artifact store, once open; router its router.
	arts   atomic.Pointer[Artifacts]
	router atomic.Pointer[Router]
	// leading is set while this node is the coordinator.
	leading atomic.Bool

	mu    sync.Mutex // guards state, peer and fwd
	state state
	peer  *http.Server
	fwd   *forwarder

	st     *store.Store
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Prepare readies the node's part in its cluster before its store opens:
// it makes the cluster CA at the first start, joins the cluster of
// opts.Join when asked, and opens the peer link of a node that has
// peers. The store opens with what Peer returns.
func Prepare(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.PeerPort == 0 {
		opts.PeerPort = DefaultPeerPort
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cluster{opts: opts, log: opts.Logger, files: Files(opts.DataDir)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var err error
	if c.state, err = readState(opts.DataDir); err != nil {
		return nil, fmt.Errorf("reading the cluster state: %w", err)
	}
	// A data directory is of the embedded store or of an external
	// cluster for good: started the other way, the node would run a
	// store of its own, without its apps and with a new admin token,
	// and know nothing of the instances it left running.
	switch {
	case opts.External && store.Exists(opts.DataDir):
		return nil, fmt.Errorf("--etcd-endpoints: the data directory %s holds an embedded store, with this node's apps; start it without --etcd-endpoints, or start the node of an external cluster from an empty data directory", opts.DataDir)
	case !opts.External && c.state.DirID != "":
		return nil, fmt.Errorf("the data directory %s is of a node whose state is in an external etcd cluster; start it with the same --etcd-endpoints, or start a node of its own from an empty data directory", opts.DataDir)
	}
	switch {
	case opts.External:
		// The CA and the peer link wait for the store (see Start).
		if err := os.MkdirAll(c.files.dir(), 0o700); err != nil {
			return nil, err
		}
		c.state.MemberName = opts.Name
		if c.state.DirID == "" {
			c.state.DirID = randomHex(16) // written by startExternal, before the node registers
		}
		return c, nil
	case opts.Join != "" && c.state.PeerURL != "":
		c.log.Info("--join is ignored: this node is a member of its cluster already", "peer_url", c.state.PeerURL)
	case opts.Join != "":
		if store.Exists(opts.DataDir) {
			return nil, fmt.Errorf("--join: the data directory %s holds a store already; a node joins with an empty data directory (its apps come from the cluster)", opts.DataDir)
		}
		if err := c.join(ctx); err != nil {
			return nil, err
		}
	default:
		if _, err := EnsureCA(opts.DataDir, opts.Name, opts.Advertise); err != nil {
			return nil, fmt.Errorf("making the cluster CA: %w", err)
		}
		if c.state.MemberName == "" {
			c.state.MemberName = "slipway" // the store's name of a single member
		}
	}
	if c.state.PeerURL != "" {
		if err := c.listen(c.state.PeerURL); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) peerURL() string {
	return "https://" + net.JoinHostPort(c.opts.Advertise, strconv.Itoa(c.opts.PeerPort))
}

func (c *Cluster) checkAdvertise() error {
	ip := net.ParseIP(c.opts.Advertise)
	if c.opts.Advertise == "" || ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%w: --api-listen has no host (or 0.0.0.0); give the address the other nodes reach this one at with --advertise-address", ErrNoAddress)
	}
	return nil
}

func (c *Cluster) join(ctx context.Context) error {
	if err := c.checkAdvertise(); err != nil {
		return fmt.Errorf("--join: %w", err)
	}
	if err := ValidateName(c.opts.Name); err != nil {
		return fmt.Errorf("--node-name: %w", err)
	}
	st, err := join(ctx, c.files, c.opts.Join, c.opts.JoinToken, c.opts.Name, c.peerURL())
	if err != nil {
		return err
	}
	c.log.Info("cluster: admitted; starting this node's member of the cluster", "join", c.opts.Join, "members", st.InitialCluster)
	c.state = st
	return st.write(c.opts.DataDir)
}

// Peer is the store's peer configuration; nil on an external cluster.
func (c *Cluster) Peer() *store.Peer {
	if c.opts.External {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &store.Peer{Name: c.state.MemberName, CAFile: c.files.CA, CertFile: c.files.Cert, KeyFile: c.files.Key,
		Started: func(h http.Handler) { c.etcd.Store(&h) }}
	if c.state.PeerURL != "" {
		u, _ := url.Parse(c.state.PeerURL)
		p.URL = u
	}
	if !store.Exists(c.opts.DataDir) {
		p.InitialCluster = c.state.InitialCluster
	}
	return p
}

// listen opens the peer link: mutual TLS, with the cluster CA's
// certificates only, on the advertised address.
func (c *Cluster) listen(peerURL string) error {
	u, err := url.Parse(peerURL)
	if err != nil {
		return err
	}
	cfg, err := serverTLS(c.files)
	if err != nil {
		return fmt.Errorf("the peer link's TLS: %w", err)
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		return fmt.Errorf("the peer link: listening on %s: %w; pick another port with --peer-port", u.Host, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(c.servePeer), TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelDebug)}
	c.peer = srv
	c.log.Info("listening", "listener", "peer", "addr", ln.Addr().String(), "tls", "mutual, cluster CA")
	go safego.Run(c.log, "peer listener", func() {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("the peer link stopped", "err", err)
		}
	})
	return nil
}

// servePeer serves the peer link: etcd's member, until it runs a 503.
func (c *Cluster) servePeer(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, apiPrefix+"/"):
		c.servePeerAPI(w, r)
		return
	case strings.HasPrefix(r.URL.Path, artifactPrefix):
		c.serveArtifact(w, r)
		return
	case strings.HasPrefix(r.URL.Path, routePrefix+"/"):
		c.servePeerRoute(w, r)
		return
	}
	h := c.etcd.Load()
	if h == nil {
		http.Error(w, "the member is starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// Start takes part in the cluster once the store is open: the CA goes
// into the store for every node to admit others with, the node registers,
// and learners that caught up are promoted.
func (c *Cluster) Start(st *store.Store) error {
	c.st = st
	if c.opts.External {
		if err := c.startExternal(); err != nil {
			return err
		}
	} else if ca, err := c.localCA(); err == nil && ca.key != nil {
		if _, err := st.PutClusterCAOnce(c.ctx, store.ClusterCA{CertPEM: string(ca.CertPEM), KeyPEM: string(ca.KeyPEM)}); err != nil {
			return fmt.Errorf("recording the cluster CA: %w", err)
		}
	}
	if err := c.registerFirst(); err != nil {
		return err
	}
	st.OnLease(func() {
		if err := c.register(store.NodeReady); err != nil {
			c.log.Warn("cluster: registering the node again", "err", err)
			return
		}
		c.log.Info("cluster: the node's lease had lapsed (cut off from the majority?); registered again")
	})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		safego.Supervise(c.log, "promoting learners", c.ctx.Done(), 0, c.promote)
	}()
	return nil
}

// nameWait is how long a node on an external cluster waits at start for
// its name to be free: a node of that name that died a moment ago (the
// machine this one replaces) holds it until its lease lapses.
var nameWait = store.DefaultLeaseTTL + 2*time.Second

// registerFirst registers the node at start. On an external cluster, a
// name another node holds is waited for, up to nameWait, and then
// refused: that node runs.
func (c *Cluster) registerFirst() error {
	deadline := time.Now().Add(nameWait)
	for {
		err := c.register(store.NodeReady)
		if !errors.Is(err, store.ErrNameTaken) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-c.ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cluster) register(nodeState string) error {
	c.mu.Lock()
	peerURL, dirID := c.state.PeerURL, c.state.DirID
	c.mu.Unlock()
	if !c.opts.External {
		dirID = "" // a cluster of embedded members admits its nodes by name
	}
	return c.st.RegisterNode(c.ctx, store.Node{Name: c.opts.Name, APIURL: c.opts.APIURL, PeerURL: peerURL,
		Labels: c.opts.Labels, State: nodeState, Started: time.Now().UTC(), Version: c.opts.Version, DirID: dirID})
}

func (c *Cluster) promote() {
	t := time.NewTicker(promoteEvery)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !c.st.Clustered() {
			continue
		}
		ms, err := c.st.PromoteLearners(c.ctx)
		for _, m := range ms {
			c.log.Info("cluster: a node caught up and votes now", "member", m.Name)
		}
		if err != nil {
			c.log.Debug("promoting learners", "err", err)
		}
	}
}

// Close stops the peer link and the node's loops. Call it after the
// store has closed, so that the member's last messages go out.
func (c *Cluster) Close() {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	srv, fwd := c.peer, c.fwd
	c.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	if fwd != nil {
		fwd.srv.Close()
	}
}

func (c *Cluster) localCA() (*CA, error) {
	certPEM, err := os.ReadFile(c.files.CA)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(c.files.caKey())
	if err != nil {
		cert, err := parseCert(certPEM)
		return &CA{Cert: cert, CertPEM: certPEM}, err
	}
	return ParseCA(certPEM, keyPEM)
}

// ca is the cluster CA with its key: this node's, or the store's.
func (c *Cluster) ca(ctx context.Context) (*CA, error) {
	if ca, err := c.localCA(); err == nil && ca.key != nil {
		return ca, nil
	}
	rec, err := c.st.ClusterCA(ctx)
	if err != nil {
		return nil, err
	}
	return ParseCA([]byte(rec.CertPEM), []byte(rec.KeyPEM))
}

// becomeClustered gives a node that ran alone its peer link, for the
// first node to join it: a certificate for its advertised address, the
// listener, and its member's peer URL.
func (c *Cluster) becomeClustered(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.PeerURL != "" {
		return nil
	}
	if err := c.checkAdvertise(); err != nil {
		return err
	}
	ca, err := c.ca(ctx)
	if err != nil {
		return err
	}
	if err := issueOwn(ca, c.files, c.state.MemberName, c.opts.Advertise); err != nil {
		return err
	}
	peerURL := c.peerURL()
	if err := c.listen(peerURL); err != nil {
		return err
	}
	if err := c.st.SetPeerURL(ctx, peerURL); err != nil {
		return err
	}
	c.state.PeerURL = peerURL
	if err := c.state.write(c.opts.DataDir); err != nil {
		return err
	}
	c.log.Info("cluster: this node takes peers now", "peer_url", peerURL)
	c.mu.Unlock()
	defer c.mu.Lock()
	return c.register(store.NodeReady)
}

// JoinToken makes a join token good for ttl; the node takes peers from
// then on.
func (c *Cluster) JoinToken(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
	if c.opts.External {
		return "", time.Time{}, store.ErrExternal
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", time.Time{}, fmt.Errorf("%w: a join token's life must be more than 0 and at most %s, not %s", ErrBadJoin, MaxTokenTTL, ttl)
	}
	if err := c.becomeClustered(ctx); err != nil {
		return "", time.Time{}, err
	}
	ca, err := c.ca(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	t := token{id: randomHex(8), secret: randomHex(32), fingerprint: ca.Fingerprint()}
	expires := time.Now().Add(ttl).UTC().Truncate(time.Second)
	if err := c.st.CreateJoinToken(ctx, store.JoinToken{ID: t.id, Hash: hashSecret(t.secret), Expires: expires}); err != nil {
		return "", time.Time{}, err
	}
	return t.String(), expires, nil
}

// Admit admits a joining node (see JoinRequest).
func (c *Cluster) Admit(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	if c.opts.External {
		return JoinResponse{}, store.ErrExternal
	}
	return c.admit(ctx, req)
}

// NodeStatus is a node as 'slipway nodes' shows it.
type NodeStatus struct {
	Name      string            `json:"name"`
	APIURL    string            `json:"api_url,omitempty"`
	PeerURL   string            `json:"peer_url,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	State     string            `json:"state"`
	Apps      int               `json:"apps"`
	Instances int               `json:"instances"`
	Self      bool              `json:"self,omitempty"`
	MemberID  string            `json:"member_id,omitempty"`
	// Coordinator is the elected coordinator.
	Coordinator bool `json:"coordinator,omitempty"`
}

// memberNode is the node name of member m: the first node's member is
// named "slipway", whatever its node's name.
func (c *Cluster) memberNode(m store.Member) string {
	names, _ := c.st.MemberNames(c.ctx)
	if name, ok := names[strconv.FormatUint(m.ID, 16)]; ok {
		return name
	}
	return m.Name
}

// Nodes lists the cluster's nodes: those registered, and the members
// whose node is down or has not started.
func (c *Cluster) Nodes(ctx context.Context) ([]NodeStatus, error) {
	nodes, err := c.st.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := c.st.Members(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := c.st.AllInstances(ctx)
	if err != nil {
		return nil, err
	}
	names, err := c.st.MemberNames(ctx)
	if err != nil {
		return nil, err
	}
	coordinator, err := c.st.Coordinator(ctx)
	if err != nil {
		return nil, err
	}
	byMember := make(map[string]store.Node)
	for _, n := range nodes {
		byMember[n.MemberID] = n
	}
	self := strconv.FormatUint(c.st.MemberID(), 16)
	var out []NodeStatus
	for _, m := range ms {
		id := strconv.FormatUint(m.ID, 16)
		ns := NodeStatus{Name: m.Name, MemberID: id, State: store.NodeDown, Self: id == self}
		if name, ok := names[id]; ok {
			ns.Name = name
		}
		if len(m.PeerURLs) > 0 {
			ns.PeerURL = m.PeerURLs[0]
		}
		if n, ok := byMember[id]; ok {
			ns.Name, ns.APIURL, ns.Labels, ns.State = n.Name, n.APIURL, n.Labels, n.State
			ns.PeerURL = cmp.Or(ns.PeerURL, n.PeerURL)
		} else if m.Learner || m.Name == "" {
			ns.State = store.NodeJoining
		}
		apps := map[string]bool{}
		for _, r := range recs {
			if r.Node == ns.Name || r.Node == "" && ns.Self {
				ns.Instances++
				apps[r.App] = true
			}
		}
		ns.Apps = len(apps)
		ns.Coordinator = ns.Name == coordinator && ns.State != store.NodeDown
		out = append(out, ns)
	}
	slices.SortFunc(out, func(a, b NodeStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// RemoveNode takes a dead node out of etcd's membership and forgets its
// registration and instances.
func (c *Cluster) RemoveNode(ctx context.Context, name string) error {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Name != name {
			continue
		}
		switch {
		case n.Self:
			return fmt.Errorf("%w: %s is the node you asked; ask another node to remove it", ErrSelf, name)
		case n.State != store.NodeDown && n.State != store.NodeJoining:
			return fmt.Errorf("%w: node %s is %s; 'nodes remove' takes out a node that is gone: stop it first", ErrNodeAlive, name, n.State)
		}
		id, _ := strconv.ParseUint(n.MemberID, 16, 64)
		if err := c.st.RemoveMember(ctx, id); err != nil {
			return err
		}
		if err := c.st.ForgetNode(ctx, name, n.MemberID); errors.Is(err, store.ErrRegistered) {
			return fmt.Errorf("%w: node %s came back while it was being removed; stop it first", ErrNodeAlive, name)
		} else if err != nil {
			return err
		}
		c.log.Info("cluster: removed a node", "node", name)
		return nil
	}
	return fmt.Errorf("%w: there is no node %s; list them with 'slipway nodes'", ErrNoNode, name)
}

// HasPeers reports whether the node whose data directory is dataDir has,
// or had, peers.
func HasPeers(dataDir string) bool {
	s, err := readState(dataDir)
	return err == nil && s.PeerURL != ""
}

// startExternal readies a node on an external cluster once its store is
// open: it takes the cluster CA from the store (the first node to start
// makes it), issues itself a certificate for its advertised address, and
// opens the peer link. The CA's key stays in the store; no node needs it
// here, for no node joins by token.
func (c *Cluster) startExternal() error {
	if err := c.checkAdvertise(); err != nil {
		return fmt.Errorf("--etcd-endpoints: %w", err)
	}
	rec, err := c.st.ClusterCA(c.ctx)
	if errors.Is(err, store.ErrNotFound) {
		var ca *CA
		if ca, err = NewCA(); err != nil {
			return err
		}
		rec, err = c.st.PutClusterCAOnce(c.ctx, store.ClusterCA{CertPEM: string(ca.CertPEM), KeyPEM: string(ca.KeyPEM)})
	}
	if err != nil {
		return fmt.Errorf("reading the cluster CA: %w", err)
	}
	ca, err := ParseCA([]byte(rec.CertPEM), []byte(rec.KeyPEM))
	if err != nil {
		return fmt.Errorf("the cluster CA in the store: %w", err)
	}
	if err := issueOwn(ca, c.files, c.opts.Name, c.opts.Advertise); err != nil {
		return err
	}
	if err := writeFile(c.files.CA, ca.CertPEM); err != nil {
		return err
	}
	peerURL := c.peerURL()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.listen(peerURL); err != nil {
		return err
	}
	c.state.PeerURL = peerURL
	return c.state.write(c.opts.DataDir)
}
