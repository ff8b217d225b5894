package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/backup"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/version"
)

// operator is the daemon as the API of one core sees it.
type operator struct {
	s *server
	k *core
}

// Version says which build runs, in which process, and how its last
// upgrade went.
func (o *operator) Version() api.Version {
	v := version.Get()
	out := api.Version{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion, PID: os.Getpid(), Started: o.s.started.UTC()}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if o.s.last != nil {
		out.Upgrade = new(*o.s.last)
	}
	return out
}

// Upgrade starts an upgrade and returns at once: the API that answers
// stops during it. Its outcome shows in Version.
func (o *operator) Upgrade() (api.Upgrade, error) { return o.s.requestUpgrade() }

// Backup makes a consistent backup while the daemon runs: no artifact is
// removed while the store's snapshot is taken and the artifacts it may
// refer to are opened; the archive then writes from those open files,
// whatever happens on disk meanwhile.
func (o *operator) Backup(ctx context.Context) (*backup.Archive, error) {
	k := o.k
	release := k.arts.HoldRemovals()
	defer release()
	// An artifact a release in the snapshot refers to is referred to by
	// the store before the snapshot (releases are only ever removed with
	// their app) or after it (one recorded meanwhile).
	before, err := referenced(ctx, k.st)
	if err != nil {
		return nil, err
	}
	snap, size, err := k.arts.Spool(readerFunc(func(w io.Writer) error {
		_, err := k.st.Snapshot(ctx, w)
		return err
	}), "the backup's snapshot of the store")
	if err != nil {
		return nil, err
	}
	a := &backup.Archive{Snapshot: snap}
	a.Manifest = backup.Manifest{Format: backup.CurrentFormat, Created: time.Now().UTC(), Slipway: version.Get(), SnapshotBytes: size}
	after, err := referenced(ctx, k.st)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Manifest.Apps, a.Manifest.Releases = after.apps, after.releases
	digests := append(slices.Collect(maps.Keys(before.digests)), slices.Collect(maps.Keys(after.digests))...)
	slices.Sort(digests)
	for _, d := range slices.Compact(digests) {
		f, size, err := k.arts.Open(d)
		if errors.Is(err, os.ErrNotExist) { // a release past retention
			continue
		}
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("opening artifact %s: %w", d, err)
		}
		a.Artifacts = append(a.Artifacts, f)
		a.Manifest.Artifacts = append(a.Manifest.Artifacts, backup.Artifact{Digest: d, Size: size})
	}
	if token, err := os.ReadFile(AdminTokenFile(o.s.c.DataDir)); err == nil {
		a.Token, a.Manifest.Token = token, true
	}
	return a, nil
}

// references are what the store's releases refer to.
type references struct {
	apps, releases int
	digests        map[string]bool
}

func referenced(ctx context.Context, st *store.Store) (references, error) {
	r := references{digests: make(map[string]bool)}
	apps, err := st.Apps(ctx)
	if err != nil {
		return r, err
	}
	r.apps = len(apps)
	for _, a := range apps {
		rels, err := st.Releases(ctx, a.Name)
		if err != nil {
			return r, err
		}
		r.releases += len(rels)
		for _, rel := range rels {
			if rel.Artifact.Digest != "" {
				r.digests[rel.Artifact.Digest] = true
			}
		}
	}
	return r, nil
}

// readerFunc is a reader of what fn writes.
func readerFunc(fn func(w io.Writer) error) io.Reader {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(fn(pw)) }()
	return pr
}

// ErrNotEmpty refuses to restore a backup into a data directory that
// holds state already.
var ErrNotEmpty = errors.New("the data directory is not empty")

// restore fills the empty data directory of c from the backup c.Restore:
// the artifacts first, then the admin token, and last the store, whose
// presence marks the restore done. What fails is removed again, so the
// same restore can be tried once more. The next start of the core starts
// every app's live release.
func restore(c Config, log *slog.Logger) (err error) {
	if err := checkEmpty(c.DataDir); err != nil {
		return err
	}
	f, err := os.Open(c.Restore)
	if err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	defer f.Close()
	br, err := backup.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("--restore %s: %w", c.Restore, err)
	}
	m := br.Manifest()
	log.Info("restore: reading a backup", "file", c.Restore, "created", m.Created, "made_by", m.Slipway.String(),
		"apps", m.Apps, "releases", m.Releases, "artifacts", len(m.Artifacts))
	artsDir := filepath.Join(c.DataDir, "artifacts")
	arts, err := artifact.NewStore(artifact.Options{Dir: artsDir, MaxUpload: c.MaxUpload, MinFreeSpace: c.MinFreeSpace})
	if err != nil {
		return err
	}
	need := m.SnapshotBytes
	for _, a := range m.Artifacts {
		need += a.Size
	}
	if err := arts.CheckSpace(need, "restoring the backup"); err != nil {
		return err
	}
	snapshot := filepath.Join(c.DataDir, "restore.snapshot")
	defer func() {
		os.Remove(snapshot)
		if err != nil { // leave the directory as empty as it was
			os.RemoveAll(artsDir)
			os.Remove(AdminTokenFile(c.DataDir))
		}
	}()
	for {
		e, content, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("--restore %s: %w", c.Restore, err)
		}
		if err := restoreEntry(c.DataDir, arts, snapshot, e, content); err != nil {
			return fmt.Errorf("--restore %s: %w", c.Restore, err)
		}
	}
	if err := store.Restore(c.DataDir, snapshot); err != nil {
		return fmt.Errorf("--restore %s: %w", c.Restore, err)
	}
	log.Info("restore: the store and the artifacts are back", "artifacts", len(m.Artifacts))
	return nil
}

func restoreEntry(dataDir string, arts *artifact.Store, snapshot string, e backup.Entry, content io.Reader) error {
	switch {
	case e.IsArtifact():
		return arts.Import(e.Digest, content, e.Size)
	case e.Name == backup.SnapshotName:
		return writeFile(snapshot, content)
	case e.Name == backup.TokenName:
		return writeFile(AdminTokenFile(dataDir), content)
	}
	return fmt.Errorf("%w: unexpected entry %s", backup.ErrInvalid, e.Name)
}

// writeFile writes r to path, mode 0600, whole or not at all.
func writeFile(path string, r io.Reader) error {
	return atomicfile.WriteFrom(path, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// checkEmpty refuses a data directory that holds state: a store, an
// admin token, artifacts or apps.
func checkEmpty(dir string) error {
	if store.Exists(dir) {
		return fmt.Errorf("%w: %s holds a store; --restore fills an empty data directory only: give a new --data-dir, or move this one aside", ErrNotEmpty, dir)
	}
	if _, err := os.Stat(AdminTokenFile(dir)); err == nil {
		return fmt.Errorf("%w: %s holds an admin.token; --restore fills an empty data directory only: give a new --data-dir, or move this one aside", ErrNotEmpty, dir)
	}
	for _, sub := range []string{"artifacts", "apps"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err == nil && len(entries) > 0 {
			return fmt.Errorf("%w: %s holds %s; --restore fills an empty data directory only: give a new --data-dir, or move this one aside", ErrNotEmpty, dir, sub)
		}
	}
	return nil
}
