package artifact

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/store"
)

// zipBytes builds a zip; entries whose name ends in "@" become symlinks to
// their body.
func zipBytes(t testing.TB, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		name, body := e[0], e[1]
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		if strings.HasSuffix(name, "@") {
			h.Name = strings.TrimSuffix(name, "@")
			h.SetMode(os.ModeSymlink | 0o777)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var executableJar = [][2]string{{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: App\n"}, {"App.class", "x"}}

func newStore(t *testing.T, max int64) *Store {
	t.Helper()
	s, err := NewStore(Options{Dir: t.TempDir(), MaxUpload: max, MaxUnpackedSize: 1 << 20, MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPut(t *testing.T) {
	s := newStore(t, 1<<20)
	tests := []struct {
		name, file string
		body       []byte
		kind       string
		err        error
	}{
		{"jar", "promo-1.0.jar", zipBytes(t, executableJar...), KindJar, nil},
		{"jar under another name", "upload.bin", zipBytes(t, executableJar...), KindJar, nil},
		{"war", "shop.war", zipBytes(t, [2]string{"WEB-INF/web.xml", "<web-app/>"}), KindWar, nil},
		{"zip", "site.zip", zipBytes(t, [2]string{"run.sh", "echo"}), KindZip, nil},
		{"empty", "a.jar", nil, "", ErrEmpty},
		{"not a zip", "a.jar", []byte("hello world, not a zip"), "", ErrCorrupt},
		{"truncated", "a.jar", zipBytes(t, executableJar...)[:40], "", ErrCorrupt},
		{"jar without Main-Class", "lib.jar", zipBytes(t, [2]string{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n"}), "", ErrCorrupt},
		{"too large", "big.jar", make([]byte, 1<<20+1), "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := s.Put(bytes.NewReader(tt.body), tt.file, -1)
			if !errors.Is(err, tt.err) {
				t.Fatalf("got error %v, want %v", err, tt.err)
			}
			if err == nil && ref.Kind != tt.kind {
				t.Errorf("kind %q, want %q", ref.Kind, tt.kind)
			}
			if err != nil {
				return
			}
			b, rerr := os.ReadFile(s.Path(ref.Digest))
			if rerr != nil || !bytes.Equal(b, tt.body) {
				t.Errorf("stored file differs from the upload (%v)", rerr)
			}
		})
	}
	entries, _ := os.ReadDir(s.opts.Dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "sha256-") {
			t.Errorf("failed uploads left %s behind", e.Name())
		}
	}
}

// TestNewStoreRemovesPartialUploads: what uploads cut short by a crash left
// behind, in the folder or in the tmp folder of earlier versions, goes at
// the next start; the artifacts stay.
func TestNewStoreRemovesPartialUploads(t *testing.T) {
	s := newStore(t, 1<<20)
	ref, err := s.Put(bytes.NewReader(zipBytes(t, executableJar...)), "a.jar", -1)
	if err != nil {
		t.Fatal(err)
	}
	partial, err := atomicfile.Create(s.opts.Dir, 0o400)
	if err != nil {
		t.Fatal(err)
	}
	partial.File.Close() // as a crash leaves it
	os.MkdirAll(filepath.Join(s.opts.Dir, "tmp"), 0o700)
	os.WriteFile(filepath.Join(s.opts.Dir, "tmp", "upload-1"), []byte("partial"), 0o600)
	if _, err := NewStore(s.opts); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(s.opts.Dir)
	if len(entries) != 1 || entries[0].Name() != ref.Digest {
		t.Errorf("the store holds %v, want only %s", entries, ref.Digest)
	}
}

func TestPutSameArtifactTwice(t *testing.T) {
	s := newStore(t, 1<<20)
	body := zipBytes(t, executableJar...)
	a, err1 := s.Put(bytes.NewReader(body), "a.jar", -1)
	b, err2 := s.Put(bytes.NewReader(body), "b.jar", -1)
	if err1 != nil || err2 != nil || a.Digest != b.Digest {
		t.Fatalf("digests %s, %s; errors %v, %v", a.Digest, b.Digest, err1, err2)
	}
}

func TestPrepareLinksAppJar(t *testing.T) {
	s := newStore(t, 1<<20)
	ref, err := s.Put(bytes.NewReader(zipBytes(t, executableJar...)), "my-service-1.2.3.jar", -1)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "v1")
	if err := s.Prepare(ref, dir, LayoutDefault); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.jar")); err != nil {
		t.Errorf("release directory has no app.jar: %v", err)
	}
}

func TestUnpackRefusesHostileArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries [][2]string
	}{
		{"zip slip", [][2]string{{"ok.txt", "x"}, {"../evil.txt", "x"}}},
		{"deep zip slip", [][2]string{{"a/../../evil.txt", "x"}}},
		{"absolute path", [][2]string{{"/tmp/evil.txt", "x"}}},
		{"symlink", [][2]string{{"link@", "/etc/passwd"}}},
		{"bomb", [][2]string{{"big.bin", strings.Repeat("0", 2<<20)}}},
		{"too many entries", manyEntries(101)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, 1<<30)
			root := t.TempDir()
			zipPath := filepath.Join(root, "in.zip")
			os.WriteFile(zipPath, zipBytes(t, tt.entries...), 0o600)
			dir := filepath.Join(root, "release")
			err := prepareZip(s, zipPath, dir)
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("refused archive left its release directory behind")
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != 1 {
				t.Errorf("files appeared beside the release directory: %v", entries)
			}
		})
	}
}

func manyEntries(n int) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{"f" + strings.Repeat("x", i%10) + string(rune('a'+i%26)) + string(rune('a'+i/26)), "x"}
	}
	return out
}

func TestUnpack(t *testing.T) {
	s := newStore(t, 1<<30)
	zipPath := filepath.Join(t.TempDir(), "in.zip")
	os.WriteFile(zipPath, zipBytes(t, [2]string{"bin/run.sh", "echo hi"}, [2]string{"app.jar", "x"}), 0o600)
	dir := filepath.Join(t.TempDir(), "release")
	if err := prepareZip(s, zipPath, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bin", "run.sh")); err != nil || string(b) != "echo hi" {
		t.Errorf("bin/run.sh: %q %v", b, err)
	}
}

// prepareZip lays out the zip at path as the release directory dir, as
// Prepare does with an uploaded zip, but without Put's checks.
func prepareZip(s *Store, path, dir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ref := store.ArtifactRef{Digest: "sha256-unchecked", Kind: KindZip}
	if err := os.WriteFile(s.Path(ref.Digest), b, 0o600); err != nil {
		return err
	}
	return s.Prepare(ref, dir, LayoutDefault)
}

// TestPutRefusesHostileZips: a zip whose entries could not be unpacked
// safely is refused when it is uploaded, not when a deployment unpacks
// it, and leaves nothing behind.
func TestPutRefusesHostileZips(t *testing.T) {
	for name, entries := range map[string][][2]string{
		"zip slip":      {{"ok.txt", "x"}, {"../evil.txt", "x"}},
		"absolute path": {{"/tmp/evil.txt", "x"}},
		"symlink":       {{"link@", "/etc/passwd"}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, 1<<20)
			if _, err := s.Put(bytes.NewReader(zipBytes(t, entries...)), "site.zip", -1); !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
			if left, _ := os.ReadDir(s.opts.Dir); len(left) != 0 {
				t.Errorf("the refused upload left %v", left)
			}
		})
	}
}

// TestPutUnwrapped: a zip holding one jar (as the Azure Pipelines tasks
// wrap one) is stored as that jar, under its own name; anything else as
// Put stores it; a wrapped entry that is unsafe is refused, leaving
// nothing.
func TestPutUnwrapped(t *testing.T) {
	jar := zipBytes(t, executableJar...)
	tests := []struct {
		name    string
		body    []byte
		file    string // the stored artifact's name
		kind    string
		content []byte // the stored bytes, when not the body
		err     error
	}{
		{"wrapped jar", zipBytes(t, [2]string{"promo-2.0.jar", string(jar)}), "promo-2.0.jar", KindJar, jar, nil},
		{"wrapped jar in a folder", zipBytes(t, [2]string{"target/promo.JAR", string(jar)}), "promo.JAR", KindJar, jar, nil},
		{"a jar sent as a zip", jar, "upload.zip", KindZip, nil, nil},
		{"a zip of two files", zipBytes(t, [2]string{"a.jar", string(jar)}, [2]string{"run.sh", "x"}), "upload.zip", KindZip, nil, nil},
		{"a zip of one other file", zipBytes(t, [2]string{"run.sh", "x"}), "upload.zip", KindZip, nil, nil},
		{"wrapped zip slip", zipBytes(t, [2]string{"../app.jar", string(jar)}), "", "", nil, ErrUnsafe},
		{"wrapped link", zipBytes(t, [2]string{"app.jar@", "/etc/passwd"}), "", "", nil, ErrUnsafe},
		{"wrapped bomb", zipBytes(t, [2]string{"app.jar", strings.Repeat("0", 2<<20)}), "", "", nil, ErrUnsafe},
		{"wrapped non-jar", zipBytes(t, [2]string{"app.jar", "not a zip"}), "", "", nil, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, 1<<20)
			ref, err := s.PutUnwrapped(bytes.NewReader(tt.body), "upload.zip", -1)
			if !errors.Is(err, tt.err) {
				t.Fatalf("got error %v, want %v", err, tt.err)
			}
			left, _ := os.ReadDir(s.opts.Dir)
			if err != nil {
				if len(left) != 0 {
					t.Errorf("the refused upload left %v", left)
				}
				return
			}
			if ref.Name != tt.file || ref.Kind != tt.kind {
				t.Errorf("stored %s of kind %s, want %s of kind %s", ref.Name, ref.Kind, tt.file, tt.kind)
			}
			want := tt.content
			if want == nil {
				want = tt.body
			}
			if b, _ := os.ReadFile(s.Path(ref.Digest)); !bytes.Equal(b, want) {
				t.Errorf("the stored artifact is not what was wrapped")
			}
			if len(left) != 1 {
				t.Errorf("the store holds %v, want the artifact only", left)
			}
		})
	}
}
