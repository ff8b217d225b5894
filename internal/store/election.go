package store

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

const electionPrefix = prefix + "coordinator"

// Elect runs this node for coordinator with etcd's election API until
// ctx ends. Each time it is elected, lead runs with a context that ends
// when it stops being coordinator (its session's lease lapsed, say, cut
// off from the majority); lead must return then.
func (s *Store) Elect(ctx context.Context, lead func(ctx context.Context)) {
	for ctx.Err() == nil {
		if err := s.electOnce(ctx, lead); err != nil && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Store) electOnce(ctx context.Context, lead func(ctx context.Context)) error {
	sess, err := concurrency.NewSession(s.rawCli, concurrency.WithTTL(int(DefaultLeaseTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	e := concurrency.NewElection(sess, electionPrefix)
	if err := e.Campaign(ctx, s.node); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
		case <-lctx.Done():
		}
		cancel()
	}()
	lead(lctx)
	if ctx.Err() == nil {
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.Resign(rctx)
		rcancel()
	}
	return errors.New("no longer coordinator")
}

// Coordinator names the elected coordinator; "" when there is none.
func (s *Store) Coordinator(ctx context.Context) (string, error) {
	resp, err := s.cli.Get(ctx, electionPrefix+"/", withFirstCreate()...)
	if err != nil {
		return "", s.wrapCluster(err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

func withFirstCreate() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1)}
}
