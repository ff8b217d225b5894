package store

import (
	"context"
	"crypto/tls"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
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

// openExternal connects to an external etcd cluster.
func openExternal(opts Options) (*Store, error) {
	ext := opts.External
	cfg := clientv3.Config{Endpoints: ext.Endpoints, TLS: ext.TLS, DialTimeout: externalDialTimeout,
		MaxCallSendMsgSize: MaxRecordBytes + 64<<10, Logger: zap.NewNop(),
		// A cut link shows as failed calls within seconds, not when the
		// kernel gives up on the connection.
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 5 * time.Second}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, externalErr(ext, err)
	}
	raw, err := clientv3.New(cfg)
	if err != nil {
		cli.Close()
		return nil, externalErr(ext, err)
	}
	s := &Store{cli: cli, rawCli: raw, stopped: newStopCause(), node: opts.Node, external: true, dir: opts.Dir, log: cmpLogger(opts.Logger)}
	s.stopped.lapsed = s.contact.lapsed
	s.cli.KV = guardedKV{KV: s.cli.KV, stopped: s.stopped}
	s.cli.Lease = guardedLease{Lease: s.cli.Lease, stopped: s.stopped}
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

func cmpLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

func externalErr(ext *External, err error) error {
	return fmt.Errorf("reaching the etcd cluster at %s: %w; check --etcd-endpoints, and --etcd-cacert, --etcd-cert and --etcd-key when it takes TLS clients",
		strings.Join(ext.Endpoints, ","), err)
}

// External reports whether the store is an external etcd cluster.
func (s *Store) External() bool { return s.external }

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
// keep-alive of the session lease, every third of its TTL.
type contact struct{ at atomic.Int64 }

func (c *contact) mark()                { c.at.Store(time.Now().UnixNano()) }
func (c *contact) since() time.Duration { return time.Since(time.Unix(0, c.at.Load())) }

// lapsed reports whether the cluster has not answered for
// externalQuorumLapse; never before the first answer, so that the
// first calls wait as long as they may.
func (c *contact) lapsed() bool { return c.at.Load() != 0 && c.since() >= externalQuorumLapse }

// externalQuorumLapse is how long a node on an external cluster goes
// without a keep-alive answer before it counts itself cut off: two missed
// keep-alives and a second.
const externalQuorumLapse = 2*DefaultLeaseTTL/3 + time.Second
