package artifact

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Bounds on what an archive's central directory may hold. archive/zip
// makes a File of every header it finds in the directory before anything
// else can look, so a 106 MB upload of two million empty entries took the
// daemon from 109 MB to 723 MB: the directory is measured first (see
// checkDirectory). With these bounds, opening an archive takes some tens of
// MB at most.
const (
	// DefaultMaxEntries is the most entries an archive may have: 65,535 is
	// all a zip can count without zip64 records, and a Spring Boot jar has
	// a few thousand.
	DefaultMaxEntries = 65_535
	// MaxDirectorySize bounds the central directory, in bytes: 256 bytes
	// for each of DefaultMaxEntries entries, where a header is 46 bytes
	// and the entry's name, extra fields and comment.
	MaxDirectorySize = 16 << 20
)

// Signatures and fixed lengths of the records checkDirectory reads
// (APPNOTE.TXT 4.3.12 to 4.3.16).
const (
	directoryHeaderSignature = 0x02014b50
	directoryEndSignature    = 0x06054b50
	directory64LocSignature  = 0x07064b50
	directory64EndSignature  = 0x06064b50
	directoryHeaderLen       = 46
	directoryEndLen          = 22
	directory64LocLen        = 20
	directory64EndLen        = 56
)

// archive is an open zip whose central directory is within the bounds.
type archive struct {
	*zip.Reader
	f *os.File
}

func (a *archive) Close() error { return a.f.Close() }

// openArchive opens the zip at path, refusing with ErrUnsafe one whose
// central directory is past maxEntries entries or MaxDirectorySize bytes
// before archive/zip reads it, and with ErrCorrupt one that is no zip.
func openArchive(path string, maxEntries int) (*archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	a, err := readArchive(f, maxEntries)
	if err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

func readArchive(f *os.File, maxEntries int) (*archive, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkDirectory(f, fi.Size(), maxEntries); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // unpacking refuses those entries itself, saying which
		return nil, fmt.Errorf("%w (%v)", ErrCorrupt, err)
	}
	return &archive{Reader: zr, f: f}, nil
}

// directoryEnd is what the end records say of the central directory.
type directoryEnd struct {
	entries, size, offset uint64
	// at is where the end record, or the zip64 one, starts.
	at int64
}

// checkDirectory measures the central directory of the zip r of size
// bytes without keeping any of it. It finds the directory as archive/zip's
// readDirectoryEnd does (Go 1.26), so that both look at the same bytes,
// then refuses an archive whose end record claims more than maxEntries
// entries or MaxDirectorySize bytes, and walks the headers as
// zip.NewReader will: it reads headers until one does not start with the
// signature and compares their count with the record's only modulo
// 65,536, so the record alone bounds nothing. The walk goes on where
// archive/zip would stop at a malformed extra field, so it counts at least
// as many headers.
func checkDirectory(r io.ReaderAt, size int64, maxEntries int) error {
	end, err := findDirectoryEnd(r, size)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrCorrupt, err)
	}
	if end.entries > uint64(maxEntries) {
		return fmt.Errorf("%w: the archive says it has %d entries, more than the limit of %d", ErrUnsafe, end.entries, maxEntries)
	}
	if end.size > MaxDirectorySize {
		return fmt.Errorf("%w: the archive's central directory is %d bytes, more than the limit of %d", ErrUnsafe, end.size, MaxDirectorySize)
	}
	base := end.at - int64(end.size) - int64(end.offset)
	start := base + int64(end.offset)
	if start < 0 || start >= size {
		return fmt.Errorf("%w (the central directory starts outside the file)", ErrCorrupt)
	}
	if err := walkDirectory(r, size, start, maxEntries); err != nil {
		return err
	}
	// archive/zip takes a base of 0 instead when a header starts at the
	// offset as recorded: walk from there too.
	if base > 0 && int64(end.offset) < size {
		return walkDirectory(r, size, int64(end.offset), maxEntries)
	}
	return nil
}

// walkDirectory counts the headers from start on, as far as they go, and
// fails as soon as they pass maxEntries or MaxDirectorySize bytes.
func walkDirectory(r io.ReaderAt, size, start int64, maxEntries int) error {
	br := bufio.NewReader(io.NewSectionReader(r, start, size-start))
	var h [directoryHeaderLen]byte
	var bytes int64
	for n := 1; ; n++ {
		if _, err := io.ReadFull(br, h[:]); err != nil || binary.LittleEndian.Uint32(h[:]) != directoryHeaderSignature {
			return nil // where archive/zip stops too
		}
		rest := int(binary.LittleEndian.Uint16(h[28:])) + int(binary.LittleEndian.Uint16(h[30:])) + int(binary.LittleEndian.Uint16(h[32:]))
		bytes += directoryHeaderLen + int64(rest)
		if n > maxEntries {
			return fmt.Errorf("%w: the archive has more than %d entries, the limit", ErrUnsafe, maxEntries)
		}
		if bytes > MaxDirectorySize {
			return fmt.Errorf("%w: the archive's central directory is over %d bytes, the limit", ErrUnsafe, MaxDirectorySize)
		}
		if _, err := br.Discard(rest); err != nil {
			return nil
		}
	}
}

// findDirectoryEnd is archive/zip's readDirectoryEnd, keeping only the
// numbers: the end record in the last 1 KiB, else the last 65 KiB, and the
// zip64 records when the end record marks a field as too small.
func findDirectoryEnd(r io.ReaderAt, size int64) (directoryEnd, error) {
	var buf []byte
	var at int64
	for i, n := range []int64{1024, 65 * 1024} {
		n = min(n, size)
		buf = make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
			return directoryEnd{}, err
		}
		if p := findSignatureInBlock(buf); p >= 0 {
			buf, at = buf[p:], size-n+int64(p)
			break
		}
		if i == 1 || n == size {
			return directoryEnd{}, zip.ErrFormat
		}
	}
	le := binary.LittleEndian
	end := directoryEnd{entries: uint64(le.Uint16(buf[10:])), size: uint64(le.Uint32(buf[12:])), offset: uint64(le.Uint32(buf[16:])), at: at}
	if int(le.Uint16(buf[20:])) > len(buf)-directoryEndLen {
		return directoryEnd{}, errors.New("zip: invalid comment length")
	}
	// archive/zip compares the size with 0xffff, not 0xffffffff: so do we.
	if end.entries == 0xffff || end.size == 0xffff || end.offset == 0xffffffff {
		if err := readDirectory64End(r, &end); err != nil {
			return directoryEnd{}, err
		}
	}
	if end.size > 1<<63-1 || end.offset > 1<<63-1 {
		return directoryEnd{}, zip.ErrFormat
	}
	return end, nil
}

// readDirectory64End reads the zip64 end record that the locator before
// end.at points to, if there is a valid locator, into end.
func readDirectory64End(r io.ReaderAt, end *directoryEnd) error {
	if end.at < directory64LocLen {
		return nil
	}
	loc := make([]byte, directory64LocLen)
	if _, err := r.ReadAt(loc, end.at-directory64LocLen); err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint32(loc) != directory64LocSignature || le.Uint32(loc[4:]) != 0 || le.Uint32(loc[16:]) != 1 {
		return nil // not a zip64 file after all
	}
	at := int64(le.Uint64(loc[8:]))
	if at < 0 {
		return nil // archive/zip ignores such a locator too
	}
	rec := make([]byte, directory64EndLen)
	if _, err := r.ReadAt(rec, at); err != nil {
		return err
	}
	if le.Uint32(rec) != directory64EndSignature {
		return zip.ErrFormat
	}
	end.entries, end.size, end.offset, end.at = le.Uint64(rec[32:]), le.Uint64(rec[40:]), le.Uint64(rec[48:]), at
	return nil
}

// findSignatureInBlock is archive/zip's: the last end record signature in
// b whose comment fits in b.
func findSignatureInBlock(b []byte) int {
	for i := len(b) - directoryEndLen; i >= 0; i-- {
		if b[i] == 'P' && b[i+1] == 'K' && b[i+2] == 0x05 && b[i+3] == 0x06 {
			n := int(b[i+directoryEndLen-2]) | int(b[i+directoryEndLen-1])<<8
			if n+directoryEndLen+i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}
