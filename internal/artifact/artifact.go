// Package artifact stores uploaded artifacts under their sha256 digest and
// lays them out in release directories.
package artifact

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/store"
)

// Kinds of artifact.
const (
	KindJar = "jar"
	KindWar = "war"
	KindZip = "zip"
)

// Defaults for the bounds on uploads and archives (the central
// directory's are in archive.go).
const (
	DefaultMaxUpload = 1 << 30 // 1 GiB
	// DefaultMaxUnpackedSize bounds what unpacking one zip writes, unless
	// four times MaxUpload is more.
	DefaultMaxUnpackedSize = 4 << 30 // 4 GiB
	// maxRatio bounds how many times larger than its compressed bytes an
	// entry may unpack to, once it is over ratioGrace: deflate reaches
	// some 1,000:1 on zeros, a bomb's material, while classes and text
	// stay far under 100:1.
	maxRatio   = 200
	ratioGrace = 1 << 20
)

// Sentinel errors; each message tells the uploader what to do.
var (
	ErrTooLarge = errors.New("upload is larger than the server's limit")
	ErrEmpty    = errors.New("upload is empty: send the jar, war or zip file as the request body")
	ErrCorrupt  = errors.New("artifact is not a valid jar, war or zip archive")
	ErrUnsafe   = errors.New("archive is not safe to unpack")
	ErrBadName  = errors.New("invalid artifact file name")
)

// MaxNameBytes bounds the file name an artifact is recorded under, as a
// file system bounds a file's name (NAME_MAX).
const MaxNameBytes = 255

// CheckName checks the file name an upload was given, before anything is
// stored: at most MaxNameBytes bytes of UTF-8 text without control
// characters (it is shown in the CLI and the dashboard, where a control
// character could rewrite the terminal). A path is allowed: only its last
// element is recorded (see Put).
func CheckName(name string) error {
	if len(name) > MaxNameBytes {
		return fmt.Errorf("%w: the name is %d bytes long; the limit is %d: rename the file, or send its name without the path", ErrBadName, len(name), MaxNameBytes)
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("%w: %q has a character that is not text (a control character, or not UTF-8): rename the file", ErrBadName, name)
	}
	return nil
}

// Options configures a Store.
type Options struct {
	// Dir holds the artifacts, one file per digest.
	Dir string
	// MaxUpload bounds an upload, in bytes; 0 means DefaultMaxUpload.
	MaxUpload int64
	// MaxUnpackedSize bounds the bytes unpacking one zip writes; 0 means
	// DefaultMaxUnpackedSize or 4 × MaxUpload, whichever is more.
	MaxUnpackedSize int64
	// MaxEntries bounds the entries of an archive, checked before its
	// central directory is read; 0 means DefaultMaxEntries.
	MaxEntries int
	// MinFreeSpace is the free space, in bytes, that uploads and
	// unpacking leave on the file system they write to (see space.go);
	// 0 means DefaultMinFreeSpace or 5% of the file system, whichever is
	// less.
	MinFreeSpace int64
}

// Store keeps artifacts under their sha256 digest.
type Store struct {
	opts Options
	// removals is held for writing while Prune removes artifacts, and
	// for reading by HoldRemovals (a backup).
	removals sync.RWMutex
}

// NewStore makes the store's directory (mode 0700) and returns the store.
// It removes the partial uploads a crash left behind, so only one Store may
// use a directory at a time (the daemon's lock on its data directory sees
// to that).
func NewStore(opts Options) (*Store, error) {
	if opts.MaxUpload == 0 {
		opts.MaxUpload = DefaultMaxUpload
	}
	if opts.MaxUnpackedSize == 0 {
		opts.MaxUnpackedSize = max(DefaultMaxUnpackedSize, 4*opts.MaxUpload)
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.RemoveTemps(opts.Dir); err != nil {
		return nil, fmt.Errorf("removing partial uploads: %w", err)
	}
	// Uploads were once written in a tmp folder of their own; what a
	// crash left there is of no use now.
	if err := os.RemoveAll(filepath.Join(opts.Dir, "tmp")); err != nil {
		return nil, err
	}
	return &Store{opts: opts}, nil
}

// MaxUpload is the largest upload Put accepts, in bytes.
func (s *Store) MaxUpload() int64 { return s.opts.MaxUpload }

// Path is where the artifact with digest is kept.
func (s *Store) Path(digest string) string { return filepath.Join(s.opts.Dir, digest) }

// Put streams r to disk under a temporary name, checks it is an archive
// Slipway can run, and renames it to its digest. Nothing is left behind when
// it fails. name is the file name the uploader gave, used to tell kinds apart;
// size is the upload's length when known (Content-Length), else -1. It
// fails with ErrNoSpace before reading, or as soon as it sees, that the
// upload would leave less than the reserve free (MinFreeSpace).
func (s *Store) Put(r io.Reader, name string, size int64) (store.ArtifactRef, error) {
	up, err := s.receive(r, size)
	if err != nil {
		return store.ArtifactRef{}, err
	}
	defer up.Close() // removes it, unless committed
	return s.commit(up, name)
}

// upload is an upload received under a temporary name.
type upload struct {
	*atomicfile.File
	digest string
	size   int64
}

// receive streams r to a temporary file within the bounds (see Put).
func (s *Store) receive(r io.Reader, size int64) (*upload, error) {
	if err := s.checkSpace(s.opts.Dir, max(size, 0), "the upload"); err != nil {
		return nil, err
	}
	tmp, err := atomicfile.Create(s.opts.Dir, 0o400)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	w := &spaceWriter{w: tmp, s: s, dir: s.opts.Dir, what: "the upload"}
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, s.opts.MaxUpload+1))
	switch {
	case err != nil:
		err = fmt.Errorf("receiving upload: %w", err)
	case n > s.opts.MaxUpload:
		err = fmt.Errorf("%w of %d bytes (--max-upload)", ErrTooLarge, s.opts.MaxUpload)
	case n == 0:
		err = ErrEmpty
	}
	if err != nil {
		tmp.Close()
		return nil, err
	}
	return &upload{File: tmp, digest: "sha256-" + hex.EncodeToString(h.Sum(nil)), size: n}, nil
}

// commit inspects a received upload and renames it to its digest.
func (s *Store) commit(up *upload, name string) (store.ArtifactRef, error) {
	if err := CheckName(name); err != nil {
		return store.ArtifactRef{}, err
	}
	kind, err := inspect(up.Name(), name, s.opts.MaxEntries)
	if err != nil {
		return store.ArtifactRef{}, err
	}
	ref := store.ArtifactRef{Digest: up.digest, Name: filepath.Base(name), Size: up.size, Kind: kind}
	return ref, up.Commit(s.Path(ref.Digest))
}

// PutUnwrapped is Put for an upload that may be a zip holding one jar or
// war and nothing else, as the Azure Pipelines tasks send a jar: the jar
// or war inside is stored instead, under its own name, within the same
// bounds. Its entry is checked as unpacking checks entries (a name with
// "..", a link, a zip bomb: ErrUnsafe). Any other upload is stored as Put
// stores it.
func (s *Store) PutUnwrapped(r io.Reader, name string, size int64) (store.ArtifactRef, error) {
	up, err := s.receive(r, size)
	if err != nil {
		return store.ArtifactRef{}, err
	}
	defer up.Close()
	a, err := openArchive(up.Name(), s.opts.MaxEntries)
	if errors.Is(err, ErrCorrupt) {
		return s.commit(up, name) // which says what is wrong with it
	}
	if err != nil {
		return store.ArtifactRef{}, err
	}
	defer a.Close()
	f := wrapped(a.File)
	if f == nil {
		return s.commit(up, name)
	}
	if err := checkEntry(f); err != nil {
		return store.ArtifactRef{}, err
	}
	if _, err := s.checkSizes(a.File); err != nil {
		return store.ArtifactRef{}, err
	}
	name = path.Base(f.Name)
	if err := CheckName(name); err != nil { // before it is unpacked
		return store.ArtifactRef{}, fmt.Errorf("the jar or war inside the zip: %w", err)
	}
	rc, err := f.Open()
	if err != nil {
		return store.ArtifactRef{}, fmt.Errorf("%w: %q: %v", ErrCorrupt, f.Name, err)
	}
	defer rc.Close()
	return s.Put(rc, name, int64(f.UncompressedSize64))
}

// wrapped returns the one entry of an archive that is a jar or war and
// nothing else, or nil.
func wrapped(files []*zip.File) *zip.File {
	if len(files) != 1 {
		return nil
	}
	lower := strings.ToLower(files[0].Name)
	if !strings.HasSuffix(lower, ".jar") && !strings.HasSuffix(lower, ".war") || files[0].FileInfo().IsDir() {
		return nil
	}
	return files[0]
}

// inspect tells what kind of archive the file at path is: a jar with a
// Main-Class, a war (WEB-INF/), or another zip. It refuses an archive of
// more than maxEntries entries.
func inspect(path, name string, maxEntries int) (string, error) {
	zr, err := openArchive(path, maxEntries)
	if errors.Is(err, ErrCorrupt) {
		return "", fmt.Errorf("%w: check that the upload finished and that you sent the file itself", err)
	}
	if err != nil {
		return "", err
	}
	defer zr.Close()
	var hasManifest, hasWebInf bool
	for _, f := range zr.File {
		switch {
		case f.Name == "META-INF/MANIFEST.MF":
			hasManifest = true
		case strings.HasPrefix(f.Name, "WEB-INF/"):
			hasWebInf = true
		}
	}
	lower := strings.ToLower(name)
	switch {
	case hasWebInf || strings.HasSuffix(lower, ".war"):
		return KindWar, nil
	case strings.HasSuffix(lower, ".jar") || (hasManifest && !strings.HasSuffix(lower, ".zip")):
		if err := checkMainClass(zr.Reader); err != nil {
			return "", err
		}
		return KindJar, nil
	default:
		// Refused now, not when a deployment unpacks it.
		for _, f := range zr.File {
			if err := checkEntry(f); err != nil {
				return "", err
			}
		}
		return KindZip, nil
	}
}

func checkMainClass(zr *zip.Reader) error {
	main, err := mainClass(zr)
	if errors.Is(err, errNoManifest) {
		return fmt.Errorf("%w: the jar has no META-INF/MANIFEST.MF, so 'java -jar' cannot run it; build an executable jar (for Spring Boot: the spring-boot-maven-plugin repackage goal)", ErrCorrupt)
	}
	if err != nil {
		return err
	}
	if main == "" {
		return fmt.Errorf("%w: the jar's manifest has no Main-Class, so 'java -jar' cannot run it; build an executable jar or upload a zip with a startup command", ErrCorrupt)
	}
	return nil
}

// Prune removes the artifacts not in keep: at once those in known (old
// releases refer to them), and others only if stored before olderThan, which
// spares an upload whose release is still being recorded. It returns the
// digests it removed.
func (s *Store) Prune(keep, known map[string]bool, olderThan time.Time) ([]string, error) {
	s.removals.Lock()
	defer s.removals.Unlock()
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || keep[name] || !strings.HasPrefix(name, "sha256-") {
			continue
		}
		info, err := e.Info()
		if err != nil || (!known[name] && info.ModTime().After(olderThan)) {
			continue
		}
		if err := os.Remove(filepath.Join(s.opts.Dir, name)); err != nil {
			return removed, err
		}
		removed = append(removed, name)
	}
	return removed, nil
}
