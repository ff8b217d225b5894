// Package store keeps all of Slipway's durable state in etcd: an embedded
// single-member etcd inside the data directory by default.
package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/etcdhttp"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"

	"github.com/slipway-dev/slipway/internal/safego"
)

// Sentinel errors; callers check them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrLocked   = errors.New("locked")
)

// NotFoundError names the record that is missing, so that an error
// message can say which one: a missing deployment of an existing app is
// not a missing app. It wraps ErrNotFound.
type NotFoundError struct {
	// Kind is what is missing: "app", "release", "deployment",
	// "credential", "domain" or "lease".
	Kind string
	// App is the app the record belongs to; for Kind "app", its name. A
	// credential found by its id alone has none.
	App string
	// ID is the release or deployment number, the credential id, or the
	// domain name or the lease's name.
	ID string
}

func (e *NotFoundError) Error() string {
	switch e.Kind {
	case "app":
		return fmt.Sprintf("no app named %s; list apps with 'slipway apps list'", e.App)
	case "release":
		return fmt.Sprintf("app %s has no release v%s; list them with 'slipway releases -a %s'", e.App, e.ID, e.App)
	case "deployment":
		return fmt.Sprintf("app %s has no deployment %s; list them with 'slipway deployments -a %s'", e.App, e.ID, e.App)
	case "domain":
		return fmt.Sprintf("app %s has no domain %s; list them with 'slipway domains list -a %s'", e.App, e.ID, e.App)
	case "lease":
		return fmt.Sprintf("no instance of app %s holds lease %s", e.App, e.ID)
	case "credential":
		if e.App == "" {
			return fmt.Sprintf("there is no credential %s", e.ID)
		}
		return fmt.Sprintf("app %s has no credential %s; list them with 'slipway credentials list -a %s'", e.App, e.ID, e.App)
	}
	return fmt.Sprintf("%s %s %s not found", e.Kind, e.App, e.ID)
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }

func appNotFound(app string) error { return &NotFoundError{Kind: "app", App: app} }

const (
	// QuotaBytes bounds etcd's database.
	QuotaBytes = 1 << 30
	// MaxRecordBytes bounds one record; see Deployment.AddEvent.
	MaxRecordBytes = 1 << 20
	// DefaultLeaseTTL bounds how long a lock can outlive the daemon that took
	// it: etcd drops the lease, and the lock with it, when keep-alives stop.
	DefaultLeaseTTL = 10 * time.Second
	startTimeout    = 60 * time.Second
	prefix          = "/slipway/"
)

// memberName and peerURL name the embedded member in its cluster of one
// (see Open); Restore makes a member of the same names.
const memberName = "slipway"

var peerURL = url.URL{Scheme: "unix", Path: "/slipway/peer"}

// Options configures Open.
type Options struct {
	// Dir is the directory etcd keeps its data in.
	Dir string
	// Debug lets etcd log at info level; otherwise it only logs fatal errors.
	Debug  bool
	Logger *slog.Logger
	// QuotaBytes bounds the database; 0 means QuotaBytes.
	QuotaBytes int64
	// Node is this node's name: its instance records carry it, and only
	// its own are its to adopt or kill.
	Node string
	// Peer is the member's peer link (see Peer); nil for a member that
	// can never have peers (a tool's, like reset-token's).
	Peer *Peer
	// External, when set, is the etcd cluster to use instead of the
	// embedded member; Debug, QuotaBytes and Peer are unused then, and
	// Dir only holds a backup's scratch copy (the system's temporary
	// folder when empty).
	External *External
}

// Peer configures the member's side of the peer link. etcd listens on
// nothing itself: the daemon serves the member's peer handler on its own
// mutual-TLS listener (see PeerHandler), and etcd dials its peers with
// the node's certificate, which it reads from CertFile and KeyFile at
// every handshake (so a new one takes effect at once).
type Peer struct {
	// Name is the member's name in etcd; the first node's is "slipway".
	Name string
	// URL is the advertised peer URL; nil for a node that has no peers
	// yet (it gets one with SetPeerURL when it admits the first).
	URL *url.URL
	// CAFile, CertFile and KeyFile are the cluster CA and the node's
	// certificate and key.
	CAFile, CertFile, KeyFile string
	// InitialCluster is set for a member joining a running cluster, on
	// its first start only: name=url pairs of every member, this one too.
	InitialCluster string
	// Started is called once etcd runs, before it is ready, with the
	// member's peer handler: a member of a cluster is ready only once
	// its peers reach it.
	Started func(http.Handler)
}

// Store is the typed view of Slipway's state in etcd.
type Store struct {
	// stopped says why etcd stopped on its own, if it did.
	stopped *stopCause
	etcd    *embed.Etcd
	cli     *clientv3.Client
	// rawCli is cli without the guard on its KV, for etcd's concurrency
	// package, which needs the client itself.
	rawCli *clientv3.Client
	// lease is the session lease (a clientv3.LeaseID), which locks and
	// the node's registration hang on; onLease is called when it changed.
	lease   atomic.Int64
	onLease atomic.Pointer[func()]
	cancel  context.CancelFunc
	// node is this node's name (Options.Node).
	node string
	// creating serializes this process's takes of fresh lease names, a
	// stripe per app (see createLease).
	creating leaseStripes
	// external is set for a store on an external cluster (etcd is nil
	// then); contact is when that cluster last answered a keep-alive.
	external bool
	contact  contact
	// dir is Options.Dir: on an external cluster, where a backup's
	// scratch member goes (see externalSnapshot).
	dir string
	// log receives what the store's own goroutines report (a recovered
	// panic); Options.Logger, or slog.Default().
	log *slog.Logger
}

// Open starts the embedded etcd member in opts.Dir and a session lease
// that locks hang on. The member listens on nothing, neither a port nor a
// socket: the daemon talks to it in-process, and a single member has no
// peers. Its files are in the 0700 data directory.
//
// With opts.External, Open starts no member: the store is a client of
// that cluster.
func Open(opts Options) (*Store, error) {
	if opts.External != nil {
		return openExternal(opts)
	}
	cfg := embed.NewConfig()
	cfg.Dir = etcdDir(opts.Dir)
	cfg.Name = memberName
	if opts.Peer != nil && opts.Peer.Name != "" {
		cfg.Name = opts.Peer.Name
	}
	cfg.LogLevel = "fatal"
	if opts.Debug {
		cfg.LogLevel = "info"
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkMember(cfg.Dir); err != nil {
		return nil, err
	}
	// No listener at all: the daemon talks to etcd in-process. The URLs
	// are only names for the member in its cluster (a path with a comma,
	// like a test's, would break etcd's cluster string; a socket path has
	// a length limit): nothing listens there.
	cfg.ListenClientUrls, cfg.ListenPeerUrls = nil, nil
	cfg.AdvertiseClientUrls = []url.URL{{Scheme: "unix", Path: "/slipway/client"}}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if p := opts.Peer; p != nil {
		configurePeer(cfg, p)
	}
	// A bounded database that is compacted: history older than the
	// retention goes, and a full quota refuses writes (each one fails
	// with ErrNoSpace) instead of growing until the disk is full.
	cfg.QuotaBackendBytes = cmp.Or(opts.QuotaBytes, QuotaBytes)
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "10m"
	cfg.MaxRequestBytes = MaxRecordBytes + 64<<10
	stopped := newStopCause()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(etcdLogger(opts.Debug, stopped))
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", cfg.Dir, err)
	}
	if opts.Peer != nil && opts.Peer.Started != nil {
		opts.Peer.Started(etcdhttp.NewPeerHandler(e.GetLogger(), e.Server))
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-stopped.done:
		return nil, stopped.get() // its goroutines are stuck: Close would hang
	case <-time.After(startTimeout):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s was not ready after %s", cfg.Dir, startTimeout)
	}
	s := &Store{etcd: e, cli: v3client.New(e.Server), stopped: stopped, node: opts.Node, log: cmp.Or(opts.Logger, slog.Default())}
	s.rawCli = v3client.New(e.Server)
	s.cli.KV = guardedKV{KV: s.cli.KV, stopped: stopped}
	s.cli.Lease = guardedLease{Lease: s.cli.Lease, stopped: stopped}
	if err := s.reclaim(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startLease(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Exists reports whether dir holds a store that Open would open, rather
// than make anew.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(etcdDir(dir), "member"))
	return err == nil
}

// etcdDir is where the embedded etcd member of the store in dir keeps its
// files.
func etcdDir(dir string) string { return filepath.Join(dir, "etcd") }

func (s *Store) startLease() error {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.grantLease(ctx)
	if err != nil {
		cancel()
		return err
	}
	s.cancel = cancel
	// A panic in the keeper (in the OnLease callback, say) must not end
	// the keep-alive: the lease would lapse, and with it every lock and
	// the node's registration. The keeper starts again on the channel it
	// was draining, which is the current lease's.
	go safego.Supervise(s.log, "session lease keeper", ctx.Done(), 0, func() { s.keepLease(ctx, &ch) })
	if s.external {
		go safego.Supervise(s.log, "external cluster watch", ctx.Done(), 0, func() { s.contact.watch(ctx) })
	}
	return nil
}

// grantLease grants a new session lease and keeps it alive.
func (s *Store) grantLease(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	lease, err := s.cli.Grant(ctx, int64(DefaultLeaseTTL/time.Second))
	if err != nil {
		return nil, fmt.Errorf("granting session lease: %w", err)
	}
	ch, err := s.cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		return nil, fmt.Errorf("keeping session lease alive: %w", err)
	}
	s.lease.Store(int64(lease.ID))
	s.contact.mark()
	return ch, nil
}

// keepLease drains the keep-alive answers until ctx is cancelled. If the
// lease lapses meanwhile (a node of a cluster cut off from the majority
// for longer than its TTL), a new one is granted once the cluster answers
// again, and onLease is called, for what hangs on the lease to be made
// again (the node's registration). *ch is the current lease's keep-alive
// channel, kept up to date so that a keeper restarted after a panic goes
// on with it.
func (s *Store) keepLease(ctx context.Context, ch *<-chan *clientv3.LeaseKeepAliveResponse) {
	for {
		for range *ch {
			s.contact.mark()
		}
		for ctx.Err() == nil {
			next, err := s.grantLease(ctx)
			if err == nil {
				*ch = next
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() != nil {
			return
		}
		if f := s.onLease.Load(); f != nil {
			(*f)()
		}
	}
}

// OnLease sets what is called after the session lease lapsed and a new
// one was granted.
func (s *Store) OnLease(f func()) { s.onLease.Store(&f) }

// leaseID is the current session lease.
func (s *Store) leaseID() clientv3.LeaseID { return clientv3.LeaseID(s.lease.Load()) }

// Close stops the lease keep-alive and the embedded etcd member. A member
// that stopped on a fault (see stopCause) is left as it is: its
// goroutines are stuck, and closing it would wait for them for ever.
func (s *Store) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.cli.Close()
	s.rawCli.Close()
	if err := s.stopped.get(); err != nil {
		return err
	}
	if s.etcd != nil {
		s.etcd.Close()
	}
	return nil
}

// getJSON reads key into v. It returns missing when key does not exist,
// which may be nil when a missing key is no error (v keeps its zero value).
func (s *Store) getJSON(ctx context.Context, key string, v any, missing error, opts ...clientv3.OpOption) error {
	resp, err := s.cli.Get(ctx, key, opts...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, s.wrapCluster(err))
	}
	if len(resp.Kvs) == 0 {
		return missing
	}
	return json.Unmarshal(resp.Kvs[0].Value, v)
}

func (s *Store) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.cli.Put(ctx, key, string(b)); err != nil {
		return fmt.Errorf("writing %s: %w", key, s.wrapCluster(err))
	}
	return nil
}

// createJSON writes key only if it does not exist yet; ErrExists otherwise.
func (s *Store) createJSON(ctx context.Context, key string, v any, opts ...clientv3.OpOption) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(b), opts...)).
		Commit()
	if err != nil {
		return fmt.Errorf("creating %s: %w", key, s.wrapCluster(err))
	}
	if !resp.Succeeded {
		return ErrExists
	}
	return nil
}

// listJSON decodes every value under a key prefix, in key order.
func listJSON[T any](ctx context.Context, s *Store, keyPrefix string) ([]T, error) {
	resp, err := s.cli.Get(ctx, keyPrefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", keyPrefix, err)
	}
	out := make([]T, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// nextNumber returns one more than the highest number under keyPrefix, whose
// keys end in a zero-padded number (see numKey).
func (s *Store) nextNumber(ctx context.Context, keyPrefix string) (int, error) {
	resp, err := s.cli.Get(ctx, keyPrefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1), clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", keyPrefix, err)
	}
	if len(resp.Kvs) == 0 {
		return 1, nil
	}
	var n int
	if _, err := fmt.Sscanf(string(resp.Kvs[0].Key[len(keyPrefix):]), "%d", &n); err != nil {
		return 0, fmt.Errorf("parsing key %s: %w", resp.Kvs[0].Key, err)
	}
	return n + 1, nil
}

func numKey(keyPrefix string, n int) string { return fmt.Sprintf("%s%010d", keyPrefix, n) }

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }
