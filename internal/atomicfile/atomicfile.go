// Package atomicfile writes files so that a reader, or the next start after
// a crash or a power cut, finds the old content or the new one whole, never
// a part: the bytes go to a temporary file in the same folder, which is
// synced, renamed over the target, and the folder synced so the rename
// itself is durable. Every writer of state in Slipway goes through it.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// tempPrefix starts the name of every temporary file, so RemoveTemps can
// tell them from the files they become.
const tempPrefix = ".slipway-tmp-"

// File is a file being written under a temporary name in the folder of its
// final name. Commit gives it that name; Close without Commit removes it.
// Write to it as to any *os.File (io.Copy uses its ReadFrom).
type File struct {
	*os.File
	dir  string
	perm os.FileMode
	done bool
}

// Create starts a file in dir that Commit will give its name and mode perm.
// The name may be chosen later, once the content is known (an artifact is
// named after its digest). Defer Close, which discards the file unless it
// was committed.
func Create(dir string, perm os.FileMode) (*File, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, err
	}
	return &File{File: f, dir: filepath.Clean(dir), perm: perm}, nil
}

// Commit makes the file path, which must be in the folder given to Create:
// it sets the mode to exactly perm (no umask applies), syncs the file,
// renames it over path and syncs the folder. On an error before the rename
// the temporary file is removed and path is untouched; after it (the folder
// sync failed) path holds the new content, but may lose it in a crash.
func (f *File) Commit(path string) error {
	if f.done {
		return errors.New("atomicfile: Commit after Commit or Close")
	}
	if filepath.Dir(filepath.Clean(path)) != f.dir {
		f.Close()
		return fmt.Errorf("atomicfile: %s is not in %s, where the temporary file is", path, f.dir)
	}
	err := f.Chmod(f.perm)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	f.done = true
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return syncDir(f.dir)
}

// Close discards the file unless Commit was called; then it does nothing.
// It is meant to be deferred right after Create.
func (f *File) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.File.Close()
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}

// WriteFile writes data to path, which appears with mode perm (exactly, no
// umask) and the whole of data, or keeps what it held before.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFrom(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFrom is WriteFile for content produced as a stream: write gets the
// temporary file, and path is replaced only if write returns nil.
func WriteFrom(path string, perm os.FileMode, write func(io.Writer) error) error {
	f, err := Create(filepath.Dir(path), perm)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := write(f); err != nil {
		return err
	}
	return f.Commit(path)
}

// MkdirTemp makes a folder in dir under a temporary name, mode 0700, for
// content that must appear whole or not at all (a release directory): fill
// it, then CommitDir it, or remove it. RemoveTemps removes what a crash
// left of it.
func MkdirTemp(dir string) (string, error) { return os.MkdirTemp(dir, tempPrefix+"*") }

// CommitDir gives tmp, a folder from MkdirTemp, its name path in the same
// folder. The file system is synced first, so that after a power cut path
// holds the files whole, and the folder after, so that the rename lasts.
// path must not exist.
func CommitDir(tmp, path string) error {
	if err := syncFS(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// RemoveTemps removes the temporary files and folders that writes cut
// short by a crash left in dir. Call it only while nothing writes there,
// as at start under the daemon's lock.
func RemoveTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) || !(e.Type().IsRegular() || e.IsDir()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncFS flushes the file system that holds path: one call for the many
// files of an unpacked archive, where a sync of each would take seconds.
func syncFS(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncing the file system of %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	return nil
}
