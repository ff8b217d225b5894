package store

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// External is an etcd cluster that the daemon does not run: the nodes of
// a Slipway cluster on it are its clients, and none is a member. Slipway
// then changes nothing of that cluster's membership, alarms or files.
type External struct {
	// Endpoints are the cluster's client URLs.
	Endpoints []string
	// TLS is the client's TLS (the cluster's CA, and the client's
	// certificate where the cluster asks for one); nil for a plain
	// unix socket, the only plain endpoint the daemon takes.
	TLS *tls.Config
}

// externalDialTimeout bounds the first contact with an external cluster.
const externalDialTimeout = 10 * time.Second

// externalRedialMax bounds the wait between two attempts to reach a
// cluster that is down.
const externalRedialMax = 2 * time.Second

// openExternal connects to an external etcd cluster.
func openExternal(opts Options) (*Store, error) {
	ext := opts.External
	cfg := clientv3.Config{Endpoints: ext.Endpoints, TLS: ext.TLS, DialTimeout: externalDialTimeout,
		MaxCallSendMsgSize: MaxRecordBytes + 64<<10, Logger: zap.NewNop(),
		// A cut link shows as failed calls within seconds, not when the
		// kernel gives up on the connection.
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
		// A cluster that comes back is dialled again within seconds,
		// not after gRPC's backoff has grown to its two minutes.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: externalRedialMax},
			MinConnectTimeout: externalDialTimeout})}}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, externalErr(ext, err)
	}
	raw, err := clientv3.New(cfg)
	if err != nil {
		cli.Close()
		return nil, externalErr(ext, err)
	}
	s := &Store{cli: cli, rawCli: raw, stopped: newStopCause(), node: opts.Node, external: true, dir: opts.Dir, log: cmp.Or(opts.Logger, slog.Default())}
	s.cli.KV = guardedKV{KV: s.cli.KV, stopped: s.stopped, contact: &s.contact}
	s.cli.Lease = guardedLease{Lease: s.cli.Lease, stopped: s.stopped, contact: &s.contact}
	// clientv3.New does not wait for the cluster: a read does, and says
	// early whether the endpoints and the credentials are right.
	ctx, cancel := context.WithTimeout(context.Background(), externalDialTimeout)
	defer cancel()
	if _, err := s.cli.Get(ctx, prefix+"probe"); err != nil {
		s.Close()
		return nil, externalErr(ext, err)
	}
	if err := s.startLease(); err != nil {
		s.Close()
		return nil, externalErr(ext, err)
	}
	s.log.Info("store: the external etcd cluster", "endpoints", strings.Join(ext.Endpoints, ","), "tls", ext.TLS != nil)
	return s, nil
}

func externalErr(ext *External, err error) error {
	return fmt.Errorf("reaching the etcd cluster at %s: %w; check --etcd-endpoints, and --etcd-cacert, --etcd-cert and --etcd-key when it takes TLS clients",
		strings.Join(ext.Endpoints, ","), err)
}

// nodeID is the member id a node on an external cluster goes by: its
// name's hash, stable across restarts. Such a node has no member of its
// own; the id only keys what the store keeps of it (see MemberNames).
func nodeID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() | 1 // never 0, which etcd's ids never are either
}

// externalMembers lists the nodes on an external cluster as members: each
// node that ever registered, until 'nodes remove' forgets it.
func (s *Store) externalMembers(ctx context.Context) ([]Member, error) {
	names, err := s.MemberNames(ctx)
	if err != nil {
		return nil, s.wrapCluster(err)
	}
	out := make([]Member, 0, len(names))
	for id, name := range names {
		n, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			continue
		}
		out = append(out, Member{ID: n, Name: name})
	}
	return out, nil
}

// contact is when the store last heard from an external cluster: a
// keep-alive of the session lease, every third of its TTL, or a call its
// majority answered (see guardedKV).
type contact struct {
	at atomic.Int64

	mu sync.Mutex // guards epoch and end
	// epoch is the time the cluster is not lost: it ends when the
	// cluster is counted lost (see watch), and the calls under way end
	// with it (see within).
	epoch context.Context
	end   context.CancelFunc
}

func (c *contact) mark()                { c.at.Store(time.Now().UnixNano()) }
func (c *contact) since() time.Duration { return time.Since(time.Unix(0, c.at.Load())) }

// lost reports whether the cluster, which answered once, has not for
// externalQuorumLapse. Before its first answer (the store opening) the
// cluster is not lost: the first contact may take longer.
func (c *contact) lost() bool { return c.at.Load() != 0 && c.since() >= externalQuorumLapse }

// lostWatchEvery is how often a store on an external cluster looks
// whether it has lost the cluster.
const lostWatchEvery = 250 * time.Millisecond

// watch ends the epoch once the cluster is lost, until ctx ends.
func (c *contact) watch(ctx context.Context) {
	t := time.NewTicker(lostWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.lost() {
			c.current() // an epoch to end, if none began yet
			c.mu.Lock()
			c.end()
			c.mu.Unlock()
		}
	}
}

// current is the epoch: the one under way, or a new one if the last one
// ended and the cluster has answered since.
func (c *contact) current() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == nil || c.epoch.Err() != nil && !c.lost() {
		c.epoch, c.end = context.WithCancel(context.Background())
	}
	return c.epoch
}

// within is ctx, ended as well when the epoch ends, and its cancel,
// which calls cancel too.
func (c *contact) within(ctx context.Context, cancel context.CancelFunc) (context.Context, context.CancelFunc) {
	ctx, cancelWithin := context.WithCancel(ctx)
	stop := context.AfterFunc(c.current(), cancelWithin)
	return ctx, func() {
		stop()
		cancelWithin()
		cancel()
	}
}

// externalQuorumLapse is how long a node on an external cluster goes
// without a keep-alive answer before it counts itself cut off: two missed
// keep-alives and a second.
const externalQuorumLapse = 2*DefaultLeaseTTL/3 + time.Second
