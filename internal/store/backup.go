package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// Snapshot writes a snapshot of the whole store to w, consistent at one
// point in time while the daemon goes on writing: etcd's own snapshot of
// its database, with the SHA-256 etcd appends to check it by. It returns
// the bytes written.
func (s *Store) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	rc, err := s.cli.Snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("taking a snapshot of the store: %w", s.stopped.wrap(err))
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return n, fmt.Errorf("taking a snapshot of the store: %w", s.stopped.wrap(err))
	}
	return n, nil
}

// ErrHasState means a data directory already holds a store, so a snapshot
// cannot be restored into it.
var ErrHasState = errors.New("the data directory already holds a store")

// Restore makes the store of data directory dir from a snapshot file (see
// Snapshot), checking the snapshot's SHA-256 first; Open then opens it. It
// refuses a dir that holds a store already. The restored member is
// Slipway's single member, whatever cluster the snapshot was taken in.
func Restore(dir, snapshotPath string) error {
	if Exists(dir) {
		return fmt.Errorf("%w: %s", ErrHasState, etcdDir(dir))
	}
	if _, err := os.Stat(etcdDir(dir)); err == nil {
		// An etcd directory without a member: what an interrupted
		// restore, or a first start that failed, left. etcdutl wants to
		// make it itself.
		if err := os.RemoveAll(etcdDir(dir)); err != nil {
			return err
		}
	}
	peer := peerURL
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        snapshotPath,
		Name:                memberName,
		OutputDataDir:       etcdDir(dir),
		PeerURLs:            []string{peer.String()},
		InitialCluster:      memberName + "=" + peer.String(),
		InitialClusterToken: "etcd-cluster",
	})
	if err != nil {
		os.RemoveAll(etcdDir(dir))
		return fmt.Errorf("restoring the store from its snapshot: %w", err)
	}
	return os.Chmod(etcdDir(dir), 0o700)
}

// ForgetInstances deletes every instance record: after a restore they
// name processes of the daemon the backup was taken from (which may
// still run, on this very machine), which this one must neither adopt
// nor kill.
func (s *Store) ForgetInstances(ctx context.Context) error {
	if _, err := s.cli.Delete(ctx, prefix+"instances/", clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("forgetting the backup's instances: %w", s.stopped.wrap(err))
	}
	return nil
}
