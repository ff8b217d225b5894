package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSnapshotRestore: a snapshot taken while the store runs restores
// into a new data directory with every record, and the restored store
// opens as Slipway's own, without the backup's instance records.
func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	if err := s.CreateApp(ctx, App{Name: "promo", CurrentRelease: 1}); err != nil {
		t.Fatal(err)
	}
	r := Release{App: "promo", Artifact: ArtifactRef{Digest: "sha256-abc"}}
	if err := s.CreateRelease(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutInstance(ctx, InstanceRecord{ID: "promo-1", App: "promo", Release: 1, PID: 4242}); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	n, err := s.Snapshot(ctx, &snap)
	if err != nil || n != int64(snap.Len()) || n == 0 {
		t.Fatalf("Snapshot: %d bytes (buffer %d), %v", n, snap.Len(), err)
	}
	// A write after the snapshot is not in it.
	if err := s.CreateApp(ctx, App{Name: "later"}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "etcd.snapshot")
	if err := os.WriteFile(file, snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := Restore(dir, file); err != nil {
		t.Fatal(err)
	}
	if err := Restore(dir, file); !errors.Is(err, ErrHasState) {
		t.Errorf("a second Restore into the same directory: %v, want ErrHasState", err)
	}
	restored := openStore(t, dir)
	defer restored.Close()
	apps, err := restored.Apps(ctx)
	if err != nil || len(apps) != 1 || apps[0].Name != "promo" || apps[0].CurrentRelease != 1 {
		t.Errorf("restored apps %+v, %v; want promo at v1 alone", apps, err)
	}
	rels, err := restored.Releases(ctx, "promo")
	if err != nil || len(rels) != 1 || rels[0].Artifact.Digest != "sha256-abc" {
		t.Errorf("restored releases %+v, %v", rels, err)
	}
	if insts, err := restored.Instances(ctx); err != nil || len(insts) != 0 {
		t.Errorf("restored instance records %+v, %v; want none: they are the backed-up daemon's", insts, err)
	}
	// The restored store takes writes (its lease and numbering work).
	if err := restored.CreateRelease(ctx, &Release{App: "promo"}); err != nil {
		t.Errorf("a release after the restore: %v", err)
	}
}

// TestRestoreRefusesDamagedSnapshot: a snapshot whose checksum does not
// match is refused, and nothing is left behind.
func TestRestoreRefusesDamagedSnapshot(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	defer s.Close()
	var snap bytes.Buffer
	if _, err := s.Snapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	b := snap.Bytes()
	b[len(b)/2] ^= 0xff
	file := filepath.Join(t.TempDir(), "etcd.snapshot")
	os.WriteFile(file, b, 0o600)
	dir := t.TempDir()
	if err := Restore(dir, file); err == nil {
		t.Fatal("a damaged snapshot was restored")
	}
	if entries, _ := os.ReadDir(dir); Exists(dir) || len(entries) != 0 {
		t.Errorf("a refused restore left %v in %s", entries, dir)
	}
}
