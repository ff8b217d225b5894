package artifact

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/slipway-dev/slipway/internal/store"
)

// entryName is the name an artifact of each kind is reachable under in its
// release directory, whatever it was uploaded as, so no pipeline needs a
// rename step.
var entryName = map[string]string{KindJar: "app.jar", KindWar: "app.war"}

// Prepare lays out the artifact ref in dir, a new release directory: a jar or
// war is linked as app.jar or app.war, a zip is unpacked. If dir already
// exists (a daemon that died while preparing it) it is made again.
func (s *Store) Prepare(ref store.ArtifactRef, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if name, ok := entryName[ref.Kind]; ok {
		return linkOrCopy(s.Path(ref.Digest), filepath.Join(dir, name))
	}
	return s.unpack(s.Path(ref.Digest), dir)
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o400)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// unpack extracts the zip at path into dir. It refuses entries that would
// land outside dir (absolute paths, ".."), symlinks, and archives whose
// entries or unpacked size exceed the store's bounds; on refusal it removes
// what it wrote.
func (s *Store) unpack(path, dir string) (err error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer zr.Close()
	if len(zr.File) > s.opts.MaxEntries {
		return fmt.Errorf("%w: the archive has %d entries, more than the limit of %d", ErrUnsafe, len(zr.File), s.opts.MaxEntries)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	budget := s.opts.MaxUnpackedSize
	for _, f := range zr.File {
		if err := unpackEntry(f, dir, &budget); err != nil {
			return err
		}
	}
	return nil
}

func unpackEntry(f *zip.File, dir string, budget *int64) error {
	if !filepath.IsLocal(f.Name) {
		return fmt.Errorf("%w: %q points outside the release directory", ErrUnsafe, f.Name)
	}
	mode := f.Mode()
	if mode&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %q is a symbolic link; put the file itself in the archive", ErrUnsafe, f.Name)
	}
	dst := filepath.Join(dir, f.Name)
	if f.FileInfo().IsDir() {
		return os.MkdirAll(dst, 0o700)
	}
	if !mode.IsRegular() {
		return fmt.Errorf("%w: %q is not a regular file", ErrUnsafe, f.Name)
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
	n, err := io.Copy(out, io.LimitReader(rc, *budget+1))
	*budget -= n
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if *budget < 0 {
		return fmt.Errorf("%w: unpacked, the archive is larger than the limit (a zip bomb?)", ErrUnsafe)
	}
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrCorrupt, f.Name, err)
	}
	return nil
}
