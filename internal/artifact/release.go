package artifact

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/store"
)

// entryName is the name an artifact of each kind is reachable under in its
// release directory, whatever it was uploaded as, so no pipeline needs a
// rename step.
var entryName = map[string]string{KindJar: "app.jar", KindWar: "app.war"}

// WebappDir is where LayoutWebapp unpacks a war in its release directory.
const WebappDir = "ROOT"

// Layout is how a release directory holds its artifact.
type Layout int

// Layouts.
const (
	// LayoutDefault links a jar or a war as app.jar or app.war and
	// unpacks a zip.
	LayoutDefault Layout = iota
	// LayoutWebapp links a war as app.war, and unpacks it into
	// WebappDir too, as a servlet container serves it.
	LayoutWebapp
)

// Prepare lays out the artifact ref in dir, the directory of a release,
// as layout says: a jar or war is linked as app.jar or app.war, a zip,
// or the war of LayoutWebapp, is unpacked, with the bounds and checks of
// unpack. The
// content is made in a temporary directory beside dir and renamed to dir
// once whole, so dir exists only complete, and a refused or failed
// release leaves nothing (what a crash leaves goes with
// atomicfile.RemoveTemps at the next start). A dir that exists is kept
// as it is: its release was prepared before, and may have instances
// running in it (a restart, a scale, the daemon's start).
func (s *Store) Prepare(ref store.ArtifactRef, dir string, layout Layout) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	tmp, err := atomicfile.MkdirTemp(parent)
	if err != nil {
		return err
	}
	if err := s.layOut(ref, tmp, layout); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := atomicfile.CommitDir(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}

func (s *Store) layOut(ref store.ArtifactRef, dir string, layout Layout) error {
	name, ok := entryName[ref.Kind]
	if !ok {
		return s.unpack(s.Path(ref.Digest), dir)
	}
	if err := s.linkOrCopy(s.Path(ref.Digest), filepath.Join(dir, name)); err != nil {
		return err
	}
	if layout != LayoutWebapp {
		return nil
	}
	if ref.Kind != KindWar {
		return fmt.Errorf("%w: a %s is no web application; a servlet container serves a war", ErrCorrupt, ref.Kind)
	}
	webapp := filepath.Join(dir, WebappDir)
	if err := os.Mkdir(webapp, 0o700); err != nil {
		return err
	}
	return s.unpack(s.Path(ref.Digest), webapp)
}

// linkOrCopy links src as dst, which takes no space, or copies it where
// they are on two file systems, keeping the reserve.
func (s *Store) linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	if err := s.checkSpace(dir, fi.Size(), "the release"); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o400)
	if err != nil {
		return err
	}
	if _, err := io.Copy(&spaceWriter{w: out, s: s, dir: dir, what: "the release"}, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// unpack extracts the zip at path into dir, an empty directory. Before
// it writes anything it refuses an archive past the store's bounds on
// entries, on the unpacked size its central directory declares, and on any
// entry's compression ratio, and with ErrNoSpace one whose declared size
// would leave less than the reserve free; then entries that would land
// outside dir (absolute paths, "..") and symlinks. As it writes, it counts
// the bytes against the bound on the unpacked size (archive/zip also
// refuses more bytes than an entry declares) and looks at the free space
// (see spaceWriter). The caller removes dir on an error.
func (s *Store) unpack(path, dir string) error {
	a, err := openArchive(path, s.opts.MaxEntries)
	if err != nil {
		return err
	}
	defer a.Close()
	total, err := s.checkSizes(a.File)
	if err != nil {
		return err
	}
	if err := s.checkSpace(dir, total, "unpacking the release"); err != nil {
		return err
	}
	budget := s.opts.MaxUnpackedSize
	w := &spaceWriter{s: s, dir: dir, what: "unpacking the release"}
	for _, f := range a.File {
		if err := unpackEntry(f, dir, &budget, w); err != nil {
			return err
		}
	}
	return nil
}

// checkSizes refuses, from what the central directory declares, an
// archive that would unpack past the store's bound, and an entry that
// would inflate more than maxRatio times. It returns the declared total.
func (s *Store) checkSizes(files []*zip.File) (int64, error) {
	var total uint64
	for _, f := range files {
		n := f.UncompressedSize64
		if n > ratioGrace && n/maxRatio > f.CompressedSize64 {
			return 0, fmt.Errorf("%w: %q would unpack from %d to %d bytes, more than %d times larger (a zip bomb?)", ErrUnsafe, f.Name, f.CompressedSize64, n, maxRatio)
		}
		if total += n; total < n || total > uint64(s.opts.MaxUnpackedSize) {
			return 0, fmt.Errorf("%w: unpacked, the archive would take more than the limit of %d bytes (a zip bomb?)", ErrUnsafe, s.opts.MaxUnpackedSize)
		}
	}
	return int64(total), nil
}

// checkEntry refuses an entry that would land outside the directory it
// is unpacked in (an absolute name, ".."), a link, or what is neither a
// regular file nor a directory.
func checkEntry(f *zip.File) error {
	if !filepath.IsLocal(f.Name) {
		return fmt.Errorf("%w: %q points outside the release directory", ErrUnsafe, f.Name)
	}
	mode := f.Mode()
	if mode&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %q is a symbolic link; put the file itself in the archive", ErrUnsafe, f.Name)
	}
	if !f.FileInfo().IsDir() && !mode.IsRegular() {
		return fmt.Errorf("%w: %q is not a regular file", ErrUnsafe, f.Name)
	}
	return nil
}

// unpackEntry writes f under dir through w, which it points at the file.
func unpackEntry(f *zip.File, dir string, budget *int64, w *spaceWriter) error {
	if err := checkEntry(f); err != nil {
		return err
	}
	mode := f.Mode()
	dst := filepath.Join(dir, f.Name)
	if f.FileInfo().IsDir() {
		return os.MkdirAll(dst, 0o700)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrCorrupt, f.Name, err)
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode.Perm()|0o600)
	if err != nil {
		return err
	}
	w.w = out
	n, err := io.Copy(w, io.LimitReader(rc, *budget+1))
	*budget -= n
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if *budget < 0 {
		return fmt.Errorf("%w: unpacked, the archive is larger than the limit (a zip bomb?)", ErrUnsafe)
	}
	var pe *fs.PathError
	if errors.Is(err, ErrNoSpace) || errors.As(err, &pe) { // writing, not reading the archive
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrCorrupt, f.Name, err)
	}
	return nil
}
