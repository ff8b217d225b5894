package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/slipway-dev/slipway/internal/atomicfile"
)

// HoldRemovals keeps Prune from removing any artifact until release is
// called, so that a backup finds every artifact the store's snapshot
// refers to. A Prune meanwhile waits.
func (s *Store) HoldRemovals() (release func()) {
	s.removals.RLock()
	return s.removals.RUnlock
}

// Open opens the artifact with digest for reading, with its size.
func (s *Store) Open(digest string) (*os.File, int64, error) {
	f, err := os.Open(s.Path(digest))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

var digestRE = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// Import stores an artifact of a backup under its digest: size bytes of
// r, which must hash to digest; it keeps the reserve of free space as an
// upload does. Nothing is left behind when it fails.
func (s *Store) Import(digest string, r io.Reader, size int64) error {
	if !digestRE.MatchString(digest) {
		return fmt.Errorf("%q is not an artifact's digest", digest)
	}
	if err := s.checkSpace(s.opts.Dir, size, "the artifact "+digest); err != nil {
		return err
	}
	tmp, err := atomicfile.Create(s.opts.Dir, 0o400)
	if err != nil {
		return err
	}
	defer tmp.Close() // removes it, unless committed
	h := sha256.New()
	w := &spaceWriter{w: tmp, s: s, dir: s.opts.Dir, what: "the artifact " + digest}
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("writing artifact %s: %w", digest, err)
	}
	if n != size {
		return fmt.Errorf("artifact %s: %d bytes of %d", digest, n, size)
	}
	if got := "sha256-" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("artifact %s has the content of %s", digest, got)
	}
	return tmp.Commit(s.Path(digest))
}

// Spool writes r to a file of its own beside the artifacts, which is
// gone once closed (it has no name), keeping the reserve of free space
// as an upload does: for a backup's snapshot, whose size is known only
// once written. It returns the file, at its start, and its size.
func (s *Store) Spool(r io.Reader, what string) (*os.File, int64, error) {
	if err := s.checkSpace(s.opts.Dir, 0, what); err != nil {
		return nil, 0, err
	}
	f, err := os.CreateTemp(s.opts.Dir, ".spool-*")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(f.Name()) // the open file stays; nothing is left after a crash
	n, err := io.Copy(&spaceWriter{w: f, s: s, dir: s.opts.Dir, what: what}, r)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n, nil
}

// CheckSpace fails with ErrNoSpace if writing need bytes beside the
// artifacts would leave less than the reserve free.
func (s *Store) CheckSpace(need int64, what string) error {
	return s.checkSpace(s.opts.Dir, need, what)
}
