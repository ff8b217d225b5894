package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrFull means the store's database reached its quota: etcd refuses
// every write (reads and deletions still work) until space is reclaimed.
var ErrFull = errors.New("the store's database is full (its quota is reached); restart the daemon to reclaim the space of old history, and delete apps or deployments that are no longer needed")

// full turns etcd's "database space exceeded" into ErrFull.
func full(err error) error {
	if errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) || strings.Contains(err.Error(), "database space exceeded") {
		return fmt.Errorf("%w (%v)", ErrFull, err)
	}
	return err
}

// reclaim clears a full database at start: it compacts away all history,
// defragments the file so that it shrinks, and lifts etcd's no-space
// alarm, which would otherwise refuse every write for good. If the live
// data itself is over the quota, writes fail again with ErrFull.
func (s *Store) reclaim() error {
	ctx := context.Background()
	alarms, err := s.cli.AlarmList(ctx)
	if err != nil {
		return fmt.Errorf("reading the store's alarms: %w", err)
	}
	var noSpace []*etcdserverpb.AlarmMember
	for _, a := range alarms.Alarms {
		if a.Alarm == etcdserverpb.AlarmType_NOSPACE {
			noSpace = append(noSpace, a)
		}
	}
	if len(noSpace) == 0 {
		return nil
	}
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	if _, err := s.cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil && !errors.Is(rpctypes.Error(err), rpctypes.ErrCompacted) {
		return fmt.Errorf("compacting the full store: %w", err)
	}
	if err := s.etcd.Server.Backend().Defrag(); err != nil {
		return fmt.Errorf("defragmenting the full store: %w", err)
	}
	for _, a := range noSpace {
		if _, err := s.cli.AlarmDisarm(ctx, (*clientv3.AlarmMember)(a)); err != nil {
			return fmt.Errorf("clearing the store's no-space alarm: %w", err)
		}
	}
	return nil
}
