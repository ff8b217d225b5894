// Package backup is the format of `slipway admin backup`: one tar archive
// with a manifest, a snapshot of the store, the admin token and the
// artifacts the kept releases need. The daemon writes it; the CLI checks
// it as it arrives; `slipway server --restore` reads it back. Every entry
// is checked against the manifest, which comes first, so a damaged or
// hostile archive is refused before it writes anything it does not say.
package backup

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/slipway-dev/slipway/internal/version"
)

// The archive's entries, in this order: the manifest, the snapshot, the
// admin token (if the daemon had one in its data directory), then the
// artifacts as the manifest lists them.
const (
	ManifestName  = "backup.json"
	SnapshotName  = "etcd.snapshot"
	TokenName     = "admin.token"
	artifactsDir  = "artifacts/"
	CurrentFormat = 1
)

// Bounds on what an archive may say, checked before anything is written.
const (
	maxManifestBytes = 16 << 20
	maxTokenBytes    = 4 << 10
	// MaxSnapshotBytes is twice the store's quota: a snapshot is the
	// database file, which the quota bounds.
	MaxSnapshotBytes = 2 << 30
	MaxArtifacts     = 100_000
	// MaxArtifactBytes bounds one artifact; an upload is bounded by
	// --max-upload, which no sane setting takes past this.
	MaxArtifactBytes = 1 << 40
)

// ErrInvalid means the archive is not a Slipway backup, or is damaged.
var ErrInvalid = errors.New("not a valid slipway backup")

// digestRE is the name of a stored artifact (see artifact.Store.Put).
var digestRE = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// Manifest says what an archive holds.
type Manifest struct {
	Format  int          `json:"format"`
	Created time.Time    `json:"created"`
	Slipway version.Info `json:"slipway"`
	// Apps and Releases count what the snapshot holds, for people.
	Apps     int `json:"apps"`
	Releases int `json:"releases"`
	// SnapshotBytes is the size of the store's snapshot.
	SnapshotBytes int64 `json:"snapshot_bytes"`
	// Token says whether the admin token is in the archive.
	Token     bool       `json:"token"`
	Artifacts []Artifact `json:"artifacts"`
}

// Artifact is one stored artifact: its digest is its name.
type Artifact struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Validate checks the manifest's bounds and names.
func (m Manifest) Validate() error {
	if m.Format != CurrentFormat {
		return fmt.Errorf("%w: format %d; this slipway reads format %d", ErrInvalid, m.Format, CurrentFormat)
	}
	if m.SnapshotBytes <= 0 || m.SnapshotBytes > MaxSnapshotBytes {
		return fmt.Errorf("%w: a snapshot of %d bytes", ErrInvalid, m.SnapshotBytes)
	}
	if len(m.Artifacts) > MaxArtifacts {
		return fmt.Errorf("%w: %d artifacts, more than %d", ErrInvalid, len(m.Artifacts), MaxArtifacts)
	}
	seen := make(map[string]bool, len(m.Artifacts))
	for _, a := range m.Artifacts {
		if !digestRE.MatchString(a.Digest) || seen[a.Digest] {
			return fmt.Errorf("%w: artifact name %q", ErrInvalid, a.Digest)
		}
		if a.Size <= 0 || a.Size > MaxArtifactBytes {
			return fmt.Errorf("%w: artifact %s of %d bytes", ErrInvalid, a.Digest, a.Size)
		}
		seen[a.Digest] = true
	}
	return nil
}

// Archive is a backup ready to be written: the manifest and the open
// files it names. The files were opened while the store's snapshot was
// taken and no artifact could be removed, so the archive is consistent
// whatever the daemon removes while it is written.
type Archive struct {
	Manifest  Manifest
	Snapshot  *os.File
	Token     []byte
	Artifacts []*os.File // in the order of Manifest.Artifacts
}

// Size is the archive's length in bytes, known before it is written (for
// Content-Length).
func (a *Archive) Size() int64 {
	manifest, _ := json.Marshal(a.Manifest)
	n := entrySize(int64(len(manifest))) + entrySize(a.Manifest.SnapshotBytes)
	if a.Manifest.Token {
		n += entrySize(int64(len(a.Token)))
	}
	for _, art := range a.Manifest.Artifacts {
		n += entrySize(art.Size)
	}
	return n + 2*512 // the end of the archive: two empty blocks
}

// entrySize is a tar entry's length: a header block and the content
// padded to whole blocks (names here are short: no extended header).
func entrySize(n int64) int64 { return 512 + (n+511)/512*512 }

// WriteTo writes the archive to w.
func (a *Archive) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	tw := tar.NewWriter(cw)
	manifest, err := json.Marshal(a.Manifest)
	if err != nil {
		return 0, err
	}
	if err := writeEntry(tw, ManifestName, int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return cw.n, err
	}
	if err := writeEntry(tw, SnapshotName, a.Manifest.SnapshotBytes, io.NewSectionReader(a.Snapshot, 0, a.Manifest.SnapshotBytes)); err != nil {
		return cw.n, err
	}
	if a.Manifest.Token {
		if err := writeEntry(tw, TokenName, int64(len(a.Token)), bytes.NewReader(a.Token)); err != nil {
			return cw.n, err
		}
	}
	for i, art := range a.Manifest.Artifacts {
		if err := writeEntry(tw, artifactsDir+art.Digest, art.Size, io.NewSectionReader(a.Artifacts[i], 0, art.Size)); err != nil {
			return cw.n, err
		}
	}
	return cw.n, tw.Close()
}

func writeEntry(tw *tar.Writer, name string, size int64, r io.Reader) error {
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, r); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// Close closes the archive's files.
func (a *Archive) Close() error {
	if a.Snapshot != nil {
		a.Snapshot.Close()
	}
	for _, f := range a.Artifacts {
		f.Close()
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// digestOf is the name an artifact with content sum is stored under.
func digestOf(sum []byte) string { return "sha256-" + hex.EncodeToString(sum) }
