package artifact

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slipway-dev/slipway/internal/store"
)

// smallDisk returns a folder on a new tmpfs of size bytes, unmounted when
// the test ends, and true. Where mounting is refused (the tests run as root
// here and in CI, but maybe not elsewhere), it returns a folder on the
// test's own disk and false: the caller then sets a reserve larger than
// that disk's free space, which takes the same path.
func smallDisk(t *testing.T, size int64) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Logf("cannot mount a tmpfs (%v): using a reserve larger than the free space instead", err)
		return dir, false
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the tmpfs: %v", err)
		}
	})
	return dir, true
}

func freeSpace(t *testing.T, dir string) int64 {
	t.Helper()
	sp, err := statSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sp.Free
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func zeros(n int64) *countingReader {
	return &countingReader{r: io.LimitReader(zeroReader{}, n)}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestPutKeepsTheReserve: on a 64 MiB disk with 16 MiB kept free, an
// upload whose length would go into the reserve is refused before it is
// read, one of unknown length as soon as it goes in, and neither leaves
// anything behind.
func TestPutKeepsTheReserve(t *testing.T) {
	disk, small := smallDisk(t, 64<<20)
	opts := Options{Dir: filepath.Join(disk, "artifacts"), MinFreeSpace: 16 << 20}
	if !small {
		opts.MinFreeSpace = freeSpace(t, disk) + 1<<30
	}
	s, err := NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	if small {
		if _, err := s.Put(bytes.NewReader(zipBytes(t, [2]string{"run.sh", "echo"})), "site.zip", -1); err != nil {
			t.Fatalf("a small upload: %v", err)
		}
	}

	known := zeros(56 << 20)
	_, err = s.Put(known, "big.zip", 56<<20)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "--min-free-space") {
		t.Errorf("an upload of 56 MiB: got %v, want ErrNoSpace", err)
	}
	if known.n != 0 {
		t.Errorf("%d bytes of an upload that could not fit were read", known.n)
	}

	unknown := zeros(56 << 20)
	_, err = s.Put(unknown, "big.zip", -1)
	if !errors.Is(err, ErrNoSpace) {
		t.Errorf("an upload of unknown length: got %v, want ErrNoSpace", err)
	}
	if small && unknown.n >= 56<<20 {
		t.Errorf("the whole upload was read; it should stop once in the reserve")
	}
	if small {
		if free := freeSpace(t, disk); free < 60<<20 {
			t.Errorf("%d bytes free after the refusals, want the refused uploads gone", free)
		}
	}
	entries, _ := os.ReadDir(opts.Dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "sha256-") {
			t.Errorf("a refused upload left %s", e.Name())
		}
	}
}

// declaring is a zip of one entry that declares size bytes unpacked from
// 1 MiB of (garbage) deflated data: it is refused from what its central
// directory declares, before anything is inflated.
func declaring(t *testing.T, size uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "data.bin", Method: zip.Deflate, CompressedSize64: 1 << 20, UncompressedSize64: size})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, 1<<20))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPrepareKeepsTheReserve: a release that would take the disk into the
// reserve is refused before it is written, saying so, and leaves nothing:
// a zip from the size its central directory declares, a jar that must be
// copied (on another file system than the artifacts) from its size.
func TestPrepareKeepsTheReserve(t *testing.T) {
	disk, small := smallDisk(t, 64<<20)
	opts := Options{Dir: t.TempDir(), MaxUnpackedSize: 1 << 30, MinFreeSpace: 32 << 20}
	if !small {
		opts.MinFreeSpace = freeSpace(t, disk) + 1<<30
	}
	s, err := NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	releases := filepath.Join(disk, "releases")
	in := filepath.Join(t.TempDir(), "in.zip")
	os.WriteFile(in, declaring(t, 40<<20), 0o600)
	err = prepareZip(s, in, filepath.Join(releases, "v1"))
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "unpacking the release (40 MiB)") {
		t.Errorf("a zip of 40 MiB: got %v, want ErrNoSpace", err)
	}
	if small {
		jar := store.ArtifactRef{Digest: "sha256-jar", Kind: KindJar}
		if err := os.WriteFile(s.Path(jar.Digest), make([]byte, 40<<20), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare(jar, filepath.Join(releases, "v2"), LayoutDefault); !errors.Is(err, ErrNoSpace) {
			t.Errorf("a jar of 40 MiB: got %v, want ErrNoSpace", err)
		}
	}
	if entries, _ := os.ReadDir(releases); len(entries) != 0 {
		t.Errorf("refused releases left %v", entries)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 96 << 20: "96 MiB", 512 << 20: "512 MiB", 5 << 30: "5.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
