package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// uploadGrace spares artifacts stored this recently from pruning: their
// release may still be being recorded.
const uploadGrace = 10 * time.Minute

// prune applies retention: the last KeepReleases releases of each app, and
// its live one, keep their artifacts and directories; other release
// directories are removed, and so are artifacts no kept release refers to.
// Release records stay, for the history.
//
// Every node of a cluster prunes its own: after a deployment it carried
// out, a switch it took part in, and a catch-up. One prune runs at a time.
func (m *Manager) prune(ctx context.Context) {
	m.pruneMu.Lock()
	defer m.pruneMu.Unlock()
	keep, known, err := m.pruneReleaseDirs(ctx)
	if err != nil {
		m.logger.Error("applying release retention", "err", err)
		return
	}
	removed, err := m.opts.Artifacts.Prune(keep, known, time.Now().Add(-uploadGrace))
	if err != nil {
		m.logger.Error("removing old artifacts", "err", err)
	}
	for _, d := range removed {
		m.logger.Info("removed artifact no kept release refers to", "digest", d)
	}
}

// pruneReleaseDirs removes the directories of releases past retention and
// returns the digests the kept releases refer to, and those any release
// refers to.
func (m *Manager) pruneReleaseDirs(ctx context.Context) (keep, known map[string]bool, err error) {
	apps, err := m.opts.Store.Apps(ctx)
	if err != nil {
		return nil, nil, err
	}
	keep, known = make(map[string]bool), make(map[string]bool)
	for _, a := range apps {
		if a.Staged != nil { // no release refers to it yet
			keep[a.Staged.Digest] = true
		}
		rels, err := m.opts.Store.Releases(ctx, a.Name)
		if err != nil {
			return nil, nil, err
		}
		for i, rel := range rels {
			known[rel.Artifact.Digest] = true
			if i >= len(rels)-m.opts.KeepReleases || rel.Number == a.CurrentRelease {
				keep[rel.Artifact.Digest] = true
				continue
			}
			if err := os.RemoveAll(m.releaseDir(a.Name, rel.Number)); err != nil {
				return nil, nil, fmt.Errorf("removing %s: %w", filepath.Base(m.releaseDir(a.Name, rel.Number)), err)
			}
		}
	}
	return keep, known, nil
}
