package artifact

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpack feeds arbitrary bytes to Prepare as a zip: it may refuse
// them, but never write outside the release directory, and never leave a
// half-written one or a temporary one.
func FuzzUnpack(f *testing.F) {
	f.Add(zipBytes(f, executableJar...))
	f.Add(zipBytes(f, [2]string{"../evil", "x"}))
	f.Add(zipBytes(f, [2]string{"a/b/c.txt", "x"}, [2]string{"a/", ""}))
	f.Add(zipBytes(f, [2]string{"link@", "../../etc"}))
	f.Add(hugeDirectory(f, 1100, false))
	f.Add(zip64Claim(f, 1<<40))
	f.Add(bomb(f, 4<<20))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := NewStore(Options{Dir: t.TempDir(), MaxUnpackedSize: 1 << 20, MaxEntries: 1000})
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		in := filepath.Join(root, "in.zip")
		if err := os.WriteFile(in, b, 0o600); err != nil {
			t.Fatal(err)
		}
		release := filepath.Join(root, "release")
		err = prepareZip(s, in, release)
		filepath.Walk(root, func(p string, info os.FileInfo, _ error) error {
			if p != root && p != in && p != release && !strings.HasPrefix(p, release+string(filepath.Separator)) {
				t.Errorf("unpacking wrote %s, outside the release directory", p)
			}
			return nil
		})
		if _, serr := os.Stat(release); err != nil && serr == nil {
			t.Errorf("a refused archive (%v) left its release directory", err)
		}
		// The bound holds for what archive/zip reads: checkDirectory
		// finds the same directory, and counts at least as many entries.
		if checkDirectory(bytes.NewReader(b), int64(len(b)), 1000) == nil {
			if zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); err == nil && len(zr.File) > 1000 {
				t.Errorf("checkDirectory passed an archive of %d entries", len(zr.File))
			}
		}
	})
}
