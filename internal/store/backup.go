package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// Snapshot writes a snapshot of the whole store to w, consistent at one
// point in time while the daemon goes on writing: etcd's own snapshot of
// its database, with the SHA-256 etcd appends to check it by. It returns
// the bytes written.
//
// On an external cluster the snapshot holds Slipway's keys only (see
// externalSnapshot).
func (s *Store) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	if s.external {
		return s.externalSnapshot(ctx, w)
	}
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

// snapshotPage bounds the keys read at once when an external cluster's
// keys are copied (records are up to MaxRecordBytes each).
const snapshotPage = 64

// externalSnapshot is Snapshot of a store on an external cluster. etcd's
// own snapshot there is of the whole cluster: every other system's keys
// that it keeps, and its users, would go to whoever holds Slipway's
// admin token, which opens Slipway, not that cluster. So Slipway's keys,
// read at one revision, are copied into a scratch member of its own in
// the data directory, whose snapshot restores as any node's does. Keys
// under a lease (registrations, locks, join tokens, the election) are of
// the running cluster, and are left out.
func (s *Store) externalSnapshot(ctx context.Context, w io.Writer) (int64, error) {
	dir, err := os.MkdirTemp(s.dir, "snapshot-")
	if err != nil {
		return 0, fmt.Errorf("taking a snapshot of the store: %w", err)
	}
	defer os.RemoveAll(dir)
	scratch, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, fmt.Errorf("taking a snapshot of the store: %w", err)
	}
	defer scratch.Close()
	key, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(snapshotPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, key, opts...)
		if err != nil {
			return 0, fmt.Errorf("taking a snapshot of the store: %w", s.wrapCluster(err))
		}
		if rev == 0 {
			rev = resp.Header.Revision // every page is read at the first one's revision
		}
		for _, kv := range resp.Kvs {
			if kv.Lease != 0 {
				continue
			}
			if _, err := scratch.cli.Put(ctx, string(kv.Key), string(kv.Value)); err != nil {
				return 0, fmt.Errorf("taking a snapshot of the store: %w", err)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return scratch.Snapshot(ctx, w)
}

// ErrHasState means a data directory already holds a store, so a snapshot
// cannot be restored into it.
var ErrHasState = errors.New("the data directory already holds a store")

// Restore makes the store of data directory dir from a snapshot file (see
// Snapshot), checking the snapshot's SHA-256 first; Open then opens it. It
// refuses a dir that holds a store already. The restored member is
// Slipway's single member, whatever cluster the snapshot was taken in.
//
// The backup's instance records are deleted before the store takes its
// place: they name processes of the daemon the backup was taken from
// (which may still run, on this very machine), which this one must
// neither adopt nor kill. So the store is restored beside its place,
// opened there, and renamed into place once it holds none; a crash
// before the rename leaves no store.
func Restore(dir, snapshotPath string) error {
	if Exists(dir) {
		return fmt.Errorf("%w: %s", ErrHasState, etcdDir(dir))
	}
	// What an interrupted restore, or a first start that failed before
	// etcd made its member, left.
	tmp := filepath.Join(dir, "etcd.restoring")
	for _, d := range []string{tmp, etcdDir(dir)} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        snapshotPath,
		Name:                memberName,
		OutputDataDir:       etcdDir(tmp),
		PeerURLs:            []string{peerURL.String()},
		InitialCluster:      memberName + "=" + peerURL.String(),
		InitialClusterToken: "etcd-cluster",
	})
	if err == nil {
		err = forgetInstances(tmp)
	}
	if err == nil {
		err = os.Chmod(etcdDir(tmp), 0o700)
	}
	if err == nil {
		err = os.Rename(etcdDir(tmp), etcdDir(dir))
	}
	os.RemoveAll(tmp)
	if err != nil {
		return fmt.Errorf("restoring the store from its snapshot: %w", err)
	}
	return nil
}

// forgetInstances deletes every instance record of the store in dir.
func forgetInstances(dir string) error {
	s, err := Open(Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.cli.Delete(ctx, prefix+"instances/", clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("forgetting the backup's instances: %w", s.stopped.wrap(err))
	}
	return nil
}
