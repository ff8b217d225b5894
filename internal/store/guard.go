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
}

func (g guardedKV) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.stopped.closing.Load() || g.stopped.lapsed != nil && g.stopped.lapsed() {
		return context.WithTimeout(ctx, closingCallTimeout)
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, callTimeout)
}

// closingCallTimeout bounds a call while the daemon stops: a node of a
// cluster that is the last one up has no majority, and its calls would
// each wait callTimeout.
const closingCallTimeout = 2 * time.Second

// Closing tells the store that the daemon is stopping: from now on every
// call gets closingCallTimeout at most.
func (s *Store) Closing() { s.stopped.closing.Store(true) }

func (g guardedKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	return g.KV.Put(ctx, key, val, opts...)
}

func (g guardedKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	return g.KV.Get(ctx, key, opts...)
}

func (g guardedKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	if err := g.stopped.get(); err != nil {
		return nil, err
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()
	return g.KV.Delete(ctx, key, opts...)
}

func (g guardedKV) Txn(ctx context.Context) clientv3.Txn {
	ctx, cancel := g.bound(ctx)
	return &guardedTxn{Txn: g.KV.Txn(ctx), cancel: cancel, stopped: g.stopped}
}

// guardedTxn is a Txn of guardedKV: Commit fails at once on a stopped
// store, and ends the call's timeout.
type guardedTxn struct {
	clientv3.Txn
	cancel  context.CancelFunc
	stopped *stopCause
}

func (t *guardedTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { t.Txn = t.Txn.If(cs...); return t }
func (t *guardedTxn) Then(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Then(ops...); return t }
func (t *guardedTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

func (t *guardedTxn) Commit() (*clientv3.TxnResponse, error) {
	defer t.cancel()
	if err := t.stopped.get(); err != nil {
		return nil, err
	}
	return t.Txn.Commit()
}

// guardedLease is the store's etcd Lease API with guardedKV's guards:
// once etcd has stopped on a fault, every call fails at once with the
// cause, and a call without a deadline gets callTimeout. KeepAlive, a
// stream that lives as long as its context, is left as it is.
type guardedLease struct {
	clientv3.Lease
	stopped *stopCause
}

func (g guardedLease) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return guardedKV{stopped: g.stopped}.bound(ctx)
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
