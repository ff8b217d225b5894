package artifact

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// endRecord is what a zip's end of central directory record (without a
// comment) says: where the central directory starts, how long it is, how
// many entries it has; and where the record is.
type endRecord struct {
	entries      uint16
	size, offset uint32
	position     int
}

func readEnd(t testing.TB, b []byte) endRecord {
	t.Helper()
	p := len(b) - 22
	if binary.LittleEndian.Uint32(b[p:]) != 0x06054b50 {
		t.Fatal("the zip does not end with an end of central directory record")
	}
	return endRecord{entries: binary.LittleEndian.Uint16(b[p+10:]), size: binary.LittleEndian.Uint32(b[p+12:]),
		offset: binary.LittleEndian.Uint32(b[p+16:]), position: p}
}

func appendEnd(b []byte, entries uint16, size, offset uint32) []byte {
	b = binary.LittleEndian.AppendUint32(b, 0x06054b50)
	b = append(b, 0, 0, 0, 0) // disk numbers
	b = binary.LittleEndian.AppendUint16(b, entries)
	b = binary.LittleEndian.AppendUint16(b, entries)
	b = binary.LittleEndian.AppendUint32(b, size)
	b = binary.LittleEndian.AppendUint32(b, offset)
	return binary.LittleEndian.AppendUint16(b, 0)
}

// hugeDirectory is a zip of one small file whose central directory repeats
// that file's header n times, while its end record claims n mod 65,536
// entries: archive/zip reads every header it finds, and checks the count
// only modulo 65,536 (a uint16 in the record). With smallSize, the record
// also gives the directory the size of that many headers: archive/zip
// then starts at the recorded offset all the same.
func hugeDirectory(t testing.TB, n int, smallSize bool) []byte {
	t.Helper()
	small := zipBytes(t, [2]string{"a", "x"})
	end := readEnd(t, small)
	header := small[end.offset : end.offset+end.size]
	out := append([]byte(nil), small[:end.offset]...)
	for range n {
		out = append(out, header...)
	}
	size := uint32(n * len(header))
	if smallSize {
		size = uint32(n%(1<<16)) * uint32(len(header))
	}
	return appendEnd(out, uint16(n), size, end.offset)
}

// zip64Claim is a small zip whose zip64 end record says it has entries
// entries.
func zip64Claim(t testing.TB, entries uint64) []byte {
	t.Helper()
	small := zipBytes(t, [2]string{"a", "x"})
	end := readEnd(t, small)
	out := append([]byte(nil), small[:end.position]...)
	rec64 := len(out)
	out = binary.LittleEndian.AppendUint32(out, 0x06064b50)
	out = binary.LittleEndian.AppendUint64(out, 44)         // size of the rest of the record
	out = append(out, 45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0) // versions, disk numbers
	out = binary.LittleEndian.AppendUint64(out, entries)
	out = binary.LittleEndian.AppendUint64(out, entries)
	out = binary.LittleEndian.AppendUint64(out, uint64(end.size))
	out = binary.LittleEndian.AppendUint64(out, uint64(end.offset))
	out = binary.LittleEndian.AppendUint32(out, 0x07064b50) // the locator
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = binary.LittleEndian.AppendUint64(out, uint64(rec64))
	out = binary.LittleEndian.AppendUint32(out, 1)
	return appendEnd(out, 0xffff, 0xffffffff, 0xffffffff)
}

// TestPutBoundsTheCentralDirectory: an archive with more entries than the
// bound is refused before archive/zip makes a File of each; whatever its
// end record claims, what the daemon allocates stays small.
func TestPutBoundsTheCentralDirectory(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want string
	}{
		// 2·65,536+100 headers of 47 bytes (6 MB), and a record saying 100.
		{"headers beyond the record's count", hugeDirectory(t, 2<<16+100, false), "more than 65535 entries"},
		{"headers beyond the record's count and size", hugeDirectory(t, 2<<16+100, true), "more than 65535 entries"},
		{"zip64 record claims 2^40 entries", zip64Claim(t, 1<<40), "says it has 1099511627776 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewStore(Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = s.Put(bytes.NewReader(tt.body), "app.zip", -1)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrUnsafe saying %q", err, tt.want)
			}
			// Before the bound, archive/zip took 35 MB for the first case,
			// and accepted it.
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Errorf("refusing the archive allocated %d bytes, want under 4 MiB", got)
			}
		})
	}
}

// TestArchiveAtTheBound: an archive of exactly MaxEntries entries is
// accepted, one more is refused.
func TestArchiveAtTheBound(t *testing.T) {
	s := newStore(t, 1<<20) // MaxEntries 100
	if _, err := s.Put(bytes.NewReader(zipBytes(t, manyEntries(100)...)), "site.zip", -1); err != nil {
		t.Errorf("100 entries: %v", err)
	}
	if _, err := s.Put(bytes.NewReader(zipBytes(t, manyEntries(101)...)), "site.zip", -1); !errors.Is(err, ErrUnsafe) {
		t.Errorf("101 entries: got %v, want ErrUnsafe", err)
	}
}

// bomb is a zip of one entry of n zero bytes, deflated.
func bomb(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "zeros.bin", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, n))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUnpackRefusesCompressionBombs: an entry that inflates more than
// maxRatio times is refused before anything is written, even when the
// archive's total is within the bound.
func TestUnpackRefusesCompressionBombs(t *testing.T) {
	s, err := NewStore(Options{Dir: t.TempDir(), MaxUnpackedSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	in := filepath.Join(root, "in.zip")
	os.WriteFile(in, bomb(t, 8<<20), 0o600) // 8 MiB from some 8 KiB
	err = prepareZip(s, in, filepath.Join(root, "release"))
	if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "zeros.bin") {
		t.Fatalf("got %v, want ErrUnsafe naming zeros.bin", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("a refused archive left %v beside the zip", entries)
	}
}

// TestPrepareRefusedLeavesNothing: whatever the refusal, Prepare leaves
// neither the release directory nor a temporary one beside it.
func TestPrepareRefusedLeavesNothing(t *testing.T) {
	tests := []struct {
		name    string
		entries [][2]string
	}{
		{"too many entries", manyEntries(101)},
		{"zip slip after good entries", [][2]string{{"a.txt", "x"}, {"b/c.txt", "x"}, {"../evil", "x"}}},
		{"past the unpacked size", [][2]string{{"a.txt", "x"}, {"big.txt", strings.Repeat("ab", 1<<20)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewStore(Options{Dir: t.TempDir(), MaxEntries: 100, MaxUnpackedSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			releases := t.TempDir()
			in := filepath.Join(t.TempDir(), "in.zip")
			os.WriteFile(in, zipBytes(t, tt.entries...), 0o600)
			if err := prepareZip(s, in, filepath.Join(releases, "v1")); !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
			if entries, _ := os.ReadDir(releases); len(entries) != 0 {
				t.Errorf("a refused release left %v", entries)
			}
		})
	}
}

// TestPrepareKeepsAPreparedRelease: preparing a release that is already
// laid out (a restart, a scale, the daemon's start) keeps the directory
// the running instances work in, instead of pulling it from under them.
func TestPrepareKeepsAPreparedRelease(t *testing.T) {
	s := newStore(t, 1<<20)
	ref, err := s.Put(bytes.NewReader(zipBytes(t, [2]string{"run.sh", "echo"})), "site.zip", -1)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "v1")
	if err := s.Prepare(ref, dir, LayoutDefault); err != nil {
		t.Fatal(err)
	}
	// An instance of the release works in it, and wrote a file there.
	if err := os.WriteFile(filepath.Join(dir, "instance.pid"), []byte("42"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ref, dir, LayoutDefault); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "instance.pid")); err != nil {
		t.Errorf("the second Prepare replaced the release directory: %v", err)
	}
}
