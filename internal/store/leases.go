package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slipway-dev/slipway/internal/settings"
)

// Named leases: a job of an app takes lease NAME so that it runs in one
// instance at a time (see the lease package). Each lease is a key,
// /slipway/leases/APP/NAME, attached to an etcd lease of its own with the
// TTL its holder asked for: when the holder stops renewing it, etcd drops
// the key, on one node or on many. The key's value says who holds it.
//
// The fencing token is the key's create revision. A new holder can take a
// lease only once its key is gone, so it creates the key anew, at a
// revision higher than any before it: the token grows with every new
// holder, and no counter needs to be kept (or bounded) for names that are
// no longer used. A renewal leaves the key, and so the token, as it is.
//
// The single runner lease (settings.Settings.SingleRunner) is a key of
// the same kind that the platform holds for an instance, on the daemon's
// session lease: Runner is set, and no instance may take, renew or give
// it up through the lease endpoint.

func leasesPrefix(app string) string   { return prefix + "leases/" + app + "/" }
func leaseKey(app, name string) string { return leasesPrefix(app) + name }

// Bounds of the leases, checked before anything is stored.
const (
	// MaxLeasesPerApp bounds the leases an app holds at once.
	MaxLeasesPerApp = 100
	// MinLeaseTTL and MaxLeaseTTL bound a lease's TTL; etcd counts it in
	// whole seconds (and keeps a lease at least about 2 s).
	MinLeaseTTL = time.Second
	MaxLeaseTTL = 10 * time.Minute
	// leaseTries bounds the rounds of a take that keeps meeting changes.
	leaseTries = 20
)

// Sentinel errors of the leases.
var (
	// ErrLeaseHeld means another instance holds the lease (a
	// *LeaseHeldError says which), or it is the app's single runner.
	ErrLeaseHeld = errors.New("the lease is held by another instance")
	// ErrTooManyLeases means the app holds MaxLeasesPerApp leases.
	ErrTooManyLeases = errors.New("too many leases")
	// ErrBadLease is a lease whose name, TTL or holder is out of bounds.
	ErrBadLease = errors.New("invalid lease")
)

// Lease is a named lease of an app and who holds it.
type Lease struct {
	App  string `json:"app"`
	Name string `json:"name"`
	// Holder is the id of the instance that holds it, Release the
	// number of that instance's release.
	Holder  string `json:"holder"`
	Release int    `json:"release"`
	// TTL is how long the lease lasts without a renewal, in seconds.
	TTL int64 `json:"ttl"`
	// Runner marks the app's single runner lease, which the platform
	// holds for Holder.
	Runner bool `json:"runner,omitempty"`
	// Taken is when Holder took it.
	Taken time.Time `json:"taken"`

	// Token is the fencing token: the key's create revision.
	Token int64 `json:"-"`
	// Expires is when the lease ends unless it is renewed: exact in the
	// answer to a take or renewal (counted from before the renewal, so
	// never later than etcd's), to the second otherwise; zero for the
	// single runner, which lasts as long as the platform holds it.
	Expires time.Time `json:"-"`
	// id is the etcd lease the key hangs on.
	id clientv3.LeaseID
}

// LeaseHeldError says who holds a lease that was asked for.
type LeaseHeldError struct{ Lease Lease }

func (e *LeaseHeldError) Error() string {
	l := e.Lease
	if l.Runner {
		return fmt.Sprintf("lease %s is app %s's single runner lease, which the platform holds for instance %s (v%d); an instance reads the file $SLIPWAY_LEASE_DIR/%s instead of taking it",
			l.Name, l.App, l.Holder, l.Release, l.Name)
	}
	return fmt.Sprintf("lease %s of app %s is held by instance %s (v%d) until %s; try again after that",
		l.Name, l.App, l.Holder, l.Release, l.Expires.UTC().Format(time.RFC3339))
}

func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

func leaseNotFound(app, name string) error { return &NotFoundError{Kind: "lease", App: app, ID: name} }

// checkLease checks l's bounds, before anything is stored.
func checkLease(l Lease) error {
	if err := settings.ValidateLeaseName(l.Name); err != nil {
		return err
	}
	if l.App == "" || l.Holder == "" {
		return fmt.Errorf("%w: lease %s has no app or no holder", ErrBadLease, l.Name)
	}
	if ttl := time.Duration(l.TTL) * time.Second; !l.Runner && (ttl < MinLeaseTTL || ttl > MaxLeaseTTL) {
		return fmt.Errorf("%w: a TTL of %ds is out of bounds (%s to %s)", ErrBadLease, l.TTL, MinLeaseTTL, MaxLeaseTTL)
	}
	return nil
}

func decodeLease(kv *mvccpb.KeyValue) (Lease, error) {
	var l Lease
	if err := json.Unmarshal(kv.Value, &l); err != nil {
		return Lease{}, fmt.Errorf("decoding %s: %w", kv.Key, err)
	}
	l.Token, l.id = kv.CreateRevision, clientv3.LeaseID(kv.Lease)
	return l, nil
}

// getLease reads the lease at key, with its key; nil when there is none.
func (s *Store) getLease(ctx context.Context, key string) (*Lease, *mvccpb.KeyValue, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", key, s.wrapCluster(err))
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, nil
	}
	l, err := decodeLease(resp.Kvs[0])
	if err != nil {
		return nil, nil, err
	}
	return &l, resp.Kvs[0], nil
}

// TakeLease gives lease l.Name of l.App to instance l.Holder (of release
// l.Release) for l.TTL seconds if no one holds it, or renews it if
// l.Holder does; a renewal with another TTL moves it to that TTL. It
// returns the lease with its token and expiry. A *LeaseHeldError names
// another holder; ErrTooManyLeases says the app holds as many as it may.
func (s *Store) TakeLease(ctx context.Context, l Lease) (Lease, error) {
	l.Runner = false
	if err := checkLease(l); err != nil {
		return Lease{}, err
	}
	key := leaseKey(l.App, l.Name)
	for range leaseTries {
		cur, kv, err := s.getLease(ctx, key)
		if err != nil {
			return Lease{}, err
		}
		var done bool
		var got Lease
		switch {
		case cur == nil:
			got, done, err = s.createLease(ctx, l)
		case cur.Holder != l.Holder || cur.Runner:
			return Lease{}, &LeaseHeldError{Lease: s.withExpiry(ctx, *cur)}
		default:
			got, done, err = s.renewLease(ctx, *cur, kv.ModRevision, l.TTL)
		}
		if err != nil || done {
			return got, err
		}
	}
	return Lease{}, fmt.Errorf("taking lease %s of app %s: it kept changing while it was being taken; try again", l.Name, l.App)
}

// leaseStripes are the mutexes that serialize the takes of fresh lease
// names; an app's takes share one, picked by its name's hash, so that
// the number of mutexes is bounded whatever the number of apps.
type leaseStripes [16]sync.Mutex

func (ls *leaseStripes) of(app string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(app))
	return &ls[h.Sum32()%uint32(len(ls))]
}

// createLease makes lease l's key on an etcd lease of its TTL, if the key
// is still absent and the app's leases are still as they were when they
// were counted, fewer than MaxLeasesPerApp. It reports whether it did.
//
// The app's takes of fresh names in this process go one at a time: each
// counts the app's leases and creates its key only if none of them
// changed since, so that takers counting at the same moment (instances
// that start together) would fail each other's guard, and a crowd of
// them would run out of tries and fail, though the app is far from its
// bound. The guard stays, for takes elsewhere (other nodes, later) and
// for renewals that move a lease to another TTL.
func (s *Store) createLease(ctx context.Context, l Lease) (Lease, bool, error) {
	mu := s.creating.of(l.App)
	mu.Lock()
	defer mu.Unlock()
	pfx := leasesPrefix(l.App)
	count, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return Lease{}, false, fmt.Errorf("counting the leases of %s: %w", l.App, s.wrapCluster(err))
	}
	if count.Count >= MaxLeasesPerApp {
		return Lease{}, false, fmt.Errorf("%w: app %s holds %d leases, the most it may; give some up (DELETE) before taking another", ErrTooManyLeases, l.App, count.Count)
	}
	start := time.Now()
	grant, err := s.cli.Grant(ctx, l.TTL)
	if err != nil {
		return Lease{}, false, fmt.Errorf("granting a lease: %w", s.wrapCluster(err))
	}
	l.Taken = start.UTC()
	b, _ := json.Marshal(l)
	key, rev := leaseKey(l.App, l.Name), count.Header.Revision
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
			// No lease of the app was taken or moved since the count.
			clientv3.Compare(clientv3.ModRevision(pfx), "<", rev+1).WithPrefix()).
		Then(clientv3.OpPut(key, string(b), clientv3.WithLease(grant.ID))).
		Commit()
	if err != nil || !resp.Succeeded {
		s.revoke(grant.ID)
		if err != nil {
			return Lease{}, false, fmt.Errorf("taking lease %s of app %s: %w", l.Name, l.App, s.wrapCluster(err))
		}
		return Lease{}, false, nil
	}
	l.Token, l.id, l.Expires = resp.Header.Revision, grant.ID, start.Add(time.Duration(l.TTL)*time.Second)
	return l, true, nil
}

// renewLease renews cur, whose key was at modRev, for ttl seconds. It
// reports false if the lease ran out meanwhile, or its key changed.
func (s *Store) renewLease(ctx context.Context, cur Lease, modRev, ttl int64) (Lease, bool, error) {
	start := time.Now()
	if cur.TTL == ttl {
		if _, err := s.cli.KeepAliveOnce(ctx, cur.id); err != nil {
			if errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound) {
				return Lease{}, false, nil // it ran out just now: take it again, or see who has
			}
			return Lease{}, false, fmt.Errorf("renewing lease %s of app %s: %w", cur.Name, cur.App, s.wrapCluster(err))
		}
		cur.Expires = start.Add(time.Duration(ttl) * time.Second)
		return cur, true, nil
	}
	// Another TTL: the key moves to an etcd lease of that TTL, and keeps
	// its create revision, which is the token.
	grant, err := s.cli.Grant(ctx, ttl)
	if err != nil {
		return Lease{}, false, fmt.Errorf("granting a lease: %w", s.wrapCluster(err))
	}
	old := cur.id
	cur.TTL = ttl
	b, _ := json.Marshal(cur)
	key := leaseKey(cur.App, cur.Name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
		Then(clientv3.OpPut(key, string(b), clientv3.WithLease(grant.ID))).
		Commit()
	if err != nil || !resp.Succeeded {
		s.revoke(grant.ID)
		if err != nil {
			return Lease{}, false, fmt.Errorf("renewing lease %s of app %s: %w", cur.Name, cur.App, s.wrapCluster(err))
		}
		return Lease{}, false, nil
	}
	s.revoke(old) // it holds no key any more
	cur.id, cur.Expires = grant.ID, start.Add(time.Duration(ttl)*time.Second)
	return cur, true, nil
}

// revoke ends an etcd lease, and the keys on it, whatever the caller's
// context: it is cleanup. One that ran out already is no error.
func (s *Store) revoke(id clientv3.LeaseID) error {
	_, err := s.cli.Revoke(context.Background(), id)
	if err != nil && !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound) {
		return s.wrapCluster(err)
	}
	return nil
}

// ReleaseLease gives up lease name of app, which holder holds. A
// *NotFoundError says nobody holds it; a *LeaseHeldError, that someone
// else does.
func (s *Store) ReleaseLease(ctx context.Context, app, name, holder string) error {
	cur, _, err := s.getLease(ctx, leaseKey(app, name))
	switch {
	case err != nil:
		return err
	case cur == nil:
		return leaseNotFound(app, name)
	case cur.Holder != holder || cur.Runner:
		return &LeaseHeldError{Lease: s.withExpiry(ctx, *cur)}
	}
	// If it ran out meanwhile, and another instance took it, that one has
	// another etcd lease, which this leaves alone.
	if err := s.revoke(cur.id); err != nil {
		return fmt.Errorf("giving up lease %s of app %s: %w", name, app, err)
	}
	return nil
}

// GetLease reads lease name of app; a *NotFoundError when nobody holds it.
func (s *Store) GetLease(ctx context.Context, app, name string) (Lease, error) {
	cur, _, err := s.getLease(ctx, leaseKey(app, name))
	if err != nil {
		return Lease{}, err
	}
	if cur == nil {
		return Lease{}, leaseNotFound(app, name)
	}
	return s.withExpiry(ctx, *cur), nil
}

// Leases lists the leases app's instances hold, by name.
func (s *Store) Leases(ctx context.Context, app string) ([]Lease, error) {
	ls, err := s.allLeases(ctx, leasesPrefix(app))
	if err != nil {
		return nil, err
	}
	for i := range ls {
		ls[i] = s.withExpiry(ctx, ls[i])
	}
	return ls, nil
}

func (s *Store) allLeases(ctx context.Context, keyPrefix string) ([]Lease, error) {
	resp, err := s.cli.Get(ctx, keyPrefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", keyPrefix, s.wrapCluster(err))
	}
	out := make([]Lease, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		l, err := decodeLease(kv)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// withExpiry fills in l's expiry, to the second, from etcd; a lease that
// ran out a moment ago shows as expiring now.
func (s *Store) withExpiry(ctx context.Context, l Lease) Lease {
	if l.Runner || !l.Expires.IsZero() {
		return l
	}
	l.Expires = time.Now()
	if resp, err := s.cli.TimeToLive(ctx, l.id); err == nil && resp.TTL > 0 {
		l.Expires = l.Expires.Add(time.Duration(resp.TTL) * time.Second)
	}
	return l
}

// RevokeLeases ends at once every lease instance holder of app holds,
// but the single runner's, which the platform gives up itself. It
// returns how many it ended.
func (s *Store) RevokeLeases(ctx context.Context, app, holder string) (int, error) {
	ls, err := s.allLeases(ctx, leasesPrefix(app))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range ls {
		if l.Holder != holder || l.Runner {
			continue
		}
		if err := s.revoke(l.id); err != nil {
			return n, fmt.Errorf("revoking lease %s of app %s: %w", l.Name, app, err)
		}
		n++
	}
	return n, nil
}

// SweepLeases ends every lease, the single runners' included, whose
// holder keep does not know: the instances of an earlier daemon that no
// longer run. Only a daemon that knows every running instance — the
// single node, at start — may call it.
func (s *Store) SweepLeases(ctx context.Context, keep func(app, holder string) bool) error {
	ls, err := s.allLeases(ctx, prefix+"leases/")
	if err != nil {
		return err
	}
	for _, l := range ls {
		if keep(l.App, l.Holder) {
			continue
		}
		if l.Runner {
			err = s.DropRunner(ctx, l.App, l.Name, l.Holder)
		} else {
			err = s.revoke(l.id)
		}
		if err != nil {
			return fmt.Errorf("ending lease %s of app %s: %w", l.Name, l.App, err)
		}
	}
	return nil
}

// HoldRunner takes app's single runner lease l.Name for instance
// l.Holder on the daemon's session lease, or keeps it there if l.Holder
// has it already (after a restart, from an earlier daemon's session). A
// *LeaseHeldError names another holder.
func (s *Store) HoldRunner(ctx context.Context, l Lease) (Lease, error) {
	l.Runner, l.TTL = true, 0
	if err := checkLease(l); err != nil {
		return Lease{}, err
	}
	key := leaseKey(l.App, l.Name)
	for range leaseTries {
		cur, kv, err := s.getLease(ctx, key)
		if err != nil {
			return Lease{}, err
		}
		if cur != nil && (!cur.Runner || cur.Holder != l.Holder) {
			return Lease{}, &LeaseHeldError{Lease: s.withExpiry(ctx, *cur)}
		}
		if cur != nil && cur.id == s.leaseID() {
			return *cur, nil
		}
		cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		if cur != nil {
			l.Taken = cur.Taken
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
		} else {
			l.Taken = time.Now().UTC()
		}
		b, _ := json.Marshal(l)
		resp, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, string(b), clientv3.WithLease(s.leaseID()))).Commit()
		if err != nil {
			return Lease{}, fmt.Errorf("holding single runner lease %s of app %s: %w", l.Name, l.App, s.wrapCluster(err))
		}
		if !resp.Succeeded {
			continue
		}
		l.Token, l.id = resp.Header.Revision, s.leaseID()
		if cur != nil {
			l.Token = cur.Token
		}
		return l, nil
	}
	return Lease{}, fmt.Errorf("holding single runner lease %s of app %s: it kept changing; trying again later", l.Name, l.App)
}

// DropRunner gives up app's single runner lease name if the platform
// holds it for holder.
func (s *Store) DropRunner(ctx context.Context, app, name, holder string) error {
	key := leaseKey(app, name)
	cur, kv, err := s.getLease(ctx, key)
	if err != nil || cur == nil || !cur.Runner || cur.Holder != holder {
		return err
	}
	_, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("giving up single runner lease %s of app %s: %w", name, app, s.wrapCluster(err))
	}
	return nil
}

func leaseEndpointKey() string { return prefix + "lease-endpoint" }

// nodeLeaseEndpointKey is the node's own: the nodes of a cluster share
// the store, each its endpoint.
func (s *Store) nodeLeaseEndpointKey() string { return prefix + "lease-endpoints/" + s.node }

// LeaseEndpoint returns the address this node's lease endpoint listened
// on at the last start, "" if none was recorded. The key of a daemon from
// before there were clusters is read too: that was this node's.
func (s *Store) LeaseEndpoint(ctx context.Context) (string, error) {
	var addr string
	if err := s.getJSON(ctx, s.nodeLeaseEndpointKey(), &addr, nil); err != nil || addr != "" {
		return addr, err
	}
	return addr, s.getJSON(ctx, leaseEndpointKey(), &addr, nil)
}

// PutLeaseEndpoint records this node's lease endpoint's address.
func (s *Store) PutLeaseEndpoint(ctx context.Context, addr string) error {
	return s.putJSON(ctx, s.nodeLeaseEndpointKey(), addr)
}
