package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// file writes b to a new file and returns it open.
func file(t *testing.T, b []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func testArchive(t *testing.T) *Archive {
	t.Helper()
	snap := bytes.Repeat([]byte("s"), 1000)
	art := []byte("jar content")
	sum := sha256.Sum256(art)
	return &Archive{
		Manifest: Manifest{Format: CurrentFormat, Apps: 1, Releases: 2, SnapshotBytes: int64(len(snap)), Token: true,
			Artifacts: []Artifact{{Digest: digestOf(sum[:]), Size: int64(len(art))}}},
		Snapshot:  file(t, snap),
		Token:     []byte("slw_admin_x\n"),
		Artifacts: []*os.File{file(t, art)},
	}
}

// TestRoundTrip: an archive reads back entry by entry, and Size is its
// length.
func TestRoundTrip(t *testing.T) {
	a := testArchive(t)
	var buf bytes.Buffer
	n, err := a.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n != a.Size() {
		t.Errorf("wrote %d bytes (buffer %d), Size says %d", n, buf.Len(), a.Size())
	}
	m, err := Verify(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if m.Apps != 1 || m.Releases != 2 || len(m.Artifacts) != 1 {
		t.Errorf("manifest %+v", m)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for {
		e, content, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(content)
		if err != nil || int64(len(b)) != e.Size {
			t.Errorf("%s: %d bytes, %v; want %d", e.Name, len(b), err, e.Size)
		}
		names = append(names, e.Name)
	}
	want := "etcd.snapshot admin.token artifacts/" + a.Manifest.Artifacts[0].Digest
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
}

// tamper writes the archive with fn changing its entries on the way.
func tamper(t *testing.T, a *Archive, fn func(tw *tar.Writer, name string, b []byte)) []byte {
	t.Helper()
	var good bytes.Buffer
	a.WriteTo(&good)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(&good)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		b, _ := io.ReadAll(tr)
		fn(tw, hdr.Name, b)
	}
	tw.Close()
	return out.Bytes()
}

func put(tw *tar.Writer, name string, b []byte) {
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg})
	tw.Write(b)
}

// TestVerifyRefuses: a damaged or hostile archive is refused, saying why.
func TestVerifyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(tw *tar.Writer, name string, b []byte)
		want string
	}{
		{"artifact content changed", func(tw *tar.Writer, name string, b []byte) {
			if strings.HasPrefix(name, "artifacts/") {
				b = bytes.ToUpper(b)
			}
			put(tw, name, b)
		}, "has the content of"},
		{"an entry the manifest does not name", func(tw *tar.Writer, name string, b []byte) {
			put(tw, name, b)
			if name == TokenName {
				put(tw, "../../etc/passwd", []byte("x"))
			}
		}, `entry "../../etc/passwd"`},
		{"an entry past the end", func(tw *tar.Writer, name string, b []byte) {
			put(tw, name, b)
			if strings.HasPrefix(name, "artifacts/") {
				put(tw, "extra", []byte("x"))
			}
		}, "extra is not in the manifest"},
		{"an entry missing", func(tw *tar.Writer, name string, b []byte) {
			if !strings.HasPrefix(name, "artifacts/") {
				put(tw, name, b)
			}
		}, "ends before artifacts/"},
		{"a link", func(tw *tar.Writer, name string, b []byte) {
			if name == SnapshotName {
				tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"})
				return
			}
			put(tw, name, b)
		}, "where the manifest has etcd.snapshot"},
		{"a manifest with a path for a digest", func(tw *tar.Writer, name string, b []byte) {
			if name == ManifestName {
				var m Manifest
				json.Unmarshal(b, &m)
				m.Artifacts[0].Digest = "../admin.token"
				b, _ = json.Marshal(m)
			}
			put(tw, name, b)
		}, `artifact name "../admin.token"`},
		{"not a backup", func(tw *tar.Writer, name string, b []byte) {
			put(tw, "hello.txt", b)
		}, "does not start with backup.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tamper(t, testArchive(t), tc.fn)
			_, err := Verify(bytes.NewReader(b))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify: %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

// TestVerifyRefusesTruncated: an archive cut short is refused.
func TestVerifyRefusesTruncated(t *testing.T) {
	var buf bytes.Buffer
	testArchive(t).WriteTo(&buf)
	// Cut in the manifest, in the snapshot, and in the last artifact's
	// content (before its padding and the two end blocks, which Go's tar
	// reader does without: what they would hold is whole).
	for _, cut := range []int{100, 1500, buf.Len() - 1024 - 512 + 5} {
		if _, err := Verify(bytes.NewReader(buf.Bytes()[:cut])); err == nil {
			t.Errorf("an archive cut at %d of %d bytes passed", cut, buf.Len())
		}
	}
}
