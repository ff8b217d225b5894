package store

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// callTimeout bounds one call to etcd that has no deadline of its own: a
// store that stopped answering (see stopCause) must not hold a deployment
// or the daemon's shutdown for ever.
const callTimeout = 30 * time.Second

// guardedKV is the store's etcd KV: once etcd has stopped on a fault,
// every call fails at once with the cause, and a call without a deadline
// gets callTimeout.
type guardedKV struct {
	clientv3.KV
	stopped *stopCause
	// contact, on an external cluster, is when it last answered: a call
	// while it is lost gets lostCallTimeout at most, and a call it
	// answers (one its majority answers: not a serializable read) marks
	// it found again, at once rather than at the next keep-alive.
	contact *contact
}

func (g guardedKV) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.stopped.closing.Load() {
		return context.WithTimeout(ctx, closingCallTimeout)
	}
	if g.contact != nil && g.contact.lost() {
		return context.WithTimeout(ctx, lostCallTimeout)
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
	}
	if g.contact != nil {
		// A call under way when the cluster is lost ends then.
		return g.contact.within(ctx, cancel)
	}
	return ctx, cancel
}

// closingCallTimeout bounds a call while the daemon stops: a node of a
// cluster that is the last one up has no majority, and its calls would
// each wait callTimeout.
const closingCallTimeout = 2 * time.Second

// lostCallTimeout bounds a call on a node that has lost its external
// cluster (see Store.HasQuorum). The etcd client would wait for the
// cluster for as long as the call may; a node cut off from it must say
// so within seconds (even a token's check needs the cluster, which a
// member of its own would have a copy of), and one that reaches it again
// is answered within this bound.
const lostCallTimeout = 2 * time.Second

// Closing tells the store that the daemon is stopping: from now on every
// call gets closingCallTimeout at most.
func (s *Store) Closing() { s.stopped.closing.Store(true) }

func (g guardedKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	resp, err := g.KV.Put(ctx, key, val, opts...)
	g.answered(err, false)
	return resp, err
}

// answered marks the external cluster found again after a call that its
// majority answered.
func (g guardedKV) answered(err error, serializable bool) {
	if err == nil && !serializable && g.contact != nil {
		g.contact.mark()
	}
}

func (g guardedKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	resp, err := g.KV.Get(ctx, key, opts...)
	g.answered(err, clientv3.OpGet(key, opts...).IsSerializable())
	return resp, err
}

func (g guardedKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	resp, err := g.KV.Delete(ctx, key, opts...)
	g.answered(err, false)
	return resp, err
}

func (g guardedKV) Txn(ctx context.Context) clientv3.Txn {
	ctx, cancel := g.bound(ctx)
	return &guardedTxn{Txn: g.KV.Txn(ctx), cancel: cancel, stopped: g.stopped, kv: g}
}

// guardedTxn is a Txn of guardedKV: Commit fails at once on a stopped
// store, and ends the call's timeout.
type guardedTxn struct {
	clientv3.Txn
	cancel  context.CancelFunc
	stopped *stopCause
	kv      guardedKV
}

func (t *guardedTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *guardedTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *guardedTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

func (t *guardedTxn) Commit() (*clientv3.TxnResponse, error) {
	defer t.cancel()
	if err := t.stopped.get(); err != nil {
		return nil, err
	}
	resp, err := t.Txn.Commit()
	t.kv.answered(err, false)
	return resp, err
}

// guardedLease is the store's etcd Lease API with guardedKV's guards:
// once etcd has stopped on a fault, every call fails at once with the
// cause, and a call without a deadline gets callTimeout. KeepAlive, a
// stream that lives as long as its context, is left as it is.
type guardedLease struct {
	clientv3.Lease
	stopped *stopCause
	contact *contact
}

func (g guardedLease) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return guardedKV{stopped: g.stopped, contact: g.contact}.bound(ctx)
}

func (g guardedLease) Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	return g.Lease.Grant(ctx, ttl)
}

func (g guardedLease) Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	return g.Lease.Revoke(ctx, id)
}

func (g guardedLease) TimeToLive(ctx context.Context, id clientv3.LeaseID, opts ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	return g.Lease.TimeToLive(ctx, id, opts...)
}

func (g guardedLease) KeepAliveOnce(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	return g.Lease.KeepAliveOnce(ctx, id)
}
