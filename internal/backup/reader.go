package backup

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// Reader reads an archive entry by entry, each checked against the
// manifest: its name, its size, and for an artifact its digest, which a
// read of the entry's last byte verifies.
type Reader struct {
	tr       *tar.Reader
	manifest Manifest
	// want is what the entries still to come must be, in order.
	want []Entry
}

// Entry is one entry of an archive past the manifest.
type Entry struct {
	// Name is SnapshotName, TokenName or "artifacts/" + Digest.
	Name string
	// Digest is the artifact's, empty for other entries.
	Digest string
	Size   int64
}

// NewReader reads the manifest at the start of r and checks it.
func NewReader(r io.Reader) (*Reader, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if hdr.Name != ManifestName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxManifestBytes {
		return nil, fmt.Errorf("%w: it does not start with %s", ErrInvalid, ManifestName)
	}
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(tr, maxManifestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrInvalid, ManifestName, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	want := []Entry{{Name: SnapshotName, Size: m.SnapshotBytes}}
	if m.Token {
		want = append(want, Entry{Name: TokenName, Size: -1})
	}
	for _, a := range m.Artifacts {
		want = append(want, Entry{Name: artifactsDir + a.Digest, Digest: a.Digest, Size: a.Size})
	}
	return &Reader{tr: tr, manifest: m, want: want}, nil
}

// Manifest is the archive's manifest.
func (r *Reader) Manifest() Manifest { return r.manifest }

// Next returns the next entry and a reader of its content; io.EOF after
// the last one, once the archive has ended where the manifest says.
func (r *Reader) Next() (Entry, io.Reader, error) {
	hdr, err := r.tr.Next()
	if len(r.want) == 0 {
		if err == io.EOF {
			return Entry{}, nil, io.EOF
		}
		if err == nil {
			return Entry{}, nil, fmt.Errorf("%w: %s is not in the manifest", ErrInvalid, hdr.Name)
		}
		return Entry{}, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Entry{}, nil, fmt.Errorf("%w: it ends before %s: %v", ErrInvalid, r.want[0].Name, err)
	}
	e := r.want[0]
	r.want = r.want[1:]
	if hdr.Name != e.Name || hdr.Typeflag != tar.TypeReg {
		return Entry{}, nil, fmt.Errorf("%w: entry %q where the manifest has %s", ErrInvalid, hdr.Name, e.Name)
	}
	if e.Size == -1 { // the token: its size is its own, bounded
		if hdr.Size <= 0 || hdr.Size > maxTokenBytes {
			return Entry{}, nil, fmt.Errorf("%w: %s of %d bytes", ErrInvalid, TokenName, hdr.Size)
		}
		e.Size = hdr.Size
	}
	if hdr.Size != e.Size {
		return Entry{}, nil, fmt.Errorf("%w: %s has %d bytes, the manifest says %d", ErrInvalid, e.Name, hdr.Size, e.Size)
	}
	if e.Digest == "" {
		return e, r.tr, nil
	}
	return e, &digestReader{r: r.tr, h: sha256.New(), digest: e.Digest}, nil
}

// digestReader fails the read that reaches the end of an artifact whose
// content does not match its digest.
type digestReader struct {
	r      io.Reader
	h      hash.Hash
	digest string
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	if err == io.EOF {
		if got := digestOf(d.h.Sum(nil)); got != d.digest {
			return n, fmt.Errorf("%w: artifact %s has the content of %s", ErrInvalid, d.digest, got)
		}
	}
	return n, err
}

// Verify reads a whole archive from r and checks it: the manifest, every
// entry against it, every artifact against its digest, and the end. It
// returns the manifest.
func Verify(r io.Reader) (Manifest, error) {
	br, err := NewReader(r)
	if err != nil {
		return Manifest{}, err
	}
	for {
		e, content, err := br.Next()
		if err == io.EOF {
			return br.Manifest(), nil
		}
		if err != nil {
			return Manifest{}, err
		}
		if _, err := io.Copy(io.Discard, content); err != nil {
			return Manifest{}, fmt.Errorf("reading %s: %w", e.Name, err)
		}
	}
}

// IsArtifact reports whether e is an artifact.
func (e Entry) IsArtifact() bool { return strings.HasPrefix(e.Name, artifactsDir) }
