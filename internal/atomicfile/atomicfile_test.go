package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range entries {
		ns = append(ns, e.Name())
	}
	return ns
}

func TestWriteFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  string // "" for no file before
		perm os.FileMode
	}{
		{name: "new file", perm: 0o600},
		{name: "replaces", old: "old content, longer than the new", perm: 0o600},
		{name: "read-only", perm: 0o400},
		{name: "umask does not apply", perm: 0o666},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new"), tc.perm); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != "new" {
				t.Errorf("content %q, want %q", b, "new")
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.perm {
				t.Errorf("mode %v, want %v", got, tc.perm)
			}
			if got := names(t, dir); len(got) != 1 {
				t.Errorf("folder holds %q, want only state", got)
			}
		})
	}
}

// TestWriteFromError: when the content cannot be produced, the file keeps
// its old content and no temporary file stays behind.
func TestWriteFromError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	os.WriteFile(path, []byte("old"), 0o600)
	broken := errors.New("connection reset")
	err := WriteFrom(path, 0o600, func(w io.Writer) error {
		w.Write([]byte("half of the n"))
		return broken
	})
	if !errors.Is(err, broken) {
		t.Errorf("WriteFrom = %v, want %v", err, broken)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("content %q after a failed write, want %q", b, "old")
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("folder holds %q, want only state", got)
	}
}

func TestWriteFileNoFolder(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "state"), nil, 0o600); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFile into a missing folder = %v, want ErrNotExist", err)
	}
}

// TestWholeOrNothing: a reader racing with writers sees one complete
// version or another, never a mix, a truncated file or no file.
func TestWholeOrNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	versions := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 128<<10)}
	if err := WriteFile(path, versions[0], 0o600); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			if err := WriteFile(path, versions[i%2], 0o600); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading while it is rewritten: %v", err)
		}
		if !bytes.Equal(b, versions[0]) && !bytes.Equal(b, versions[1]) {
			t.Fatalf("read %d bytes that are neither version", len(b))
		}
	}
	stop.Store(true)
	wg.Wait()
}

// TestCreateCommitLater: a streamed file gets its name once its content is
// known, as an artifact is named after its digest.
func TestCreateCommitLater(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir, 0o400)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	io.Copy(f, strings.NewReader("artifact"))
	if b, _ := os.ReadFile(f.Name()); string(b) != "artifact" {
		t.Errorf("the temporary file holds %q before Commit", b)
	}
	if err := f.Commit(filepath.Join(dir, "sha256-x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close after Commit = %v", err)
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "sha256-x" {
		t.Errorf("folder holds %q, want only sha256-x", got)
	}
	if err := f.Commit(filepath.Join(dir, "again")); err == nil {
		t.Error("a second Commit succeeded")
	}
}

func TestCloseWithoutCommit(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("discarded"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("folder holds %q after Close without Commit", got)
	}
}

// TestCommitElsewhere: a rename into another folder would not be covered
// by the folder sync, so it is refused.
func TestCommitElsewhere(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	f, err := Create(dir, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(filepath.Join(other, "state")); err == nil {
		t.Error("Commit into another folder succeeded")
	}
	if got := append(names(t, dir), names(t, other)...); len(got) != 0 {
		t.Errorf("left %q behind", got)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	WriteFile(filepath.Join(dir, "kept"), []byte("x"), 0o600)
	f, err := Create(dir, 0o600) // as a crash would leave it
	if err != nil {
		t.Fatal(err)
	}
	f.File.Close()
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "kept" {
		t.Errorf("folder holds %q, want only kept", got)
	}
}

// TestTempDir: a folder made under a temporary name appears whole under
// its name at CommitDir; what a crash left of one, files and all, goes
// with RemoveTemps.
func TestTempDir(t *testing.T) {
	dir := t.TempDir()
	tmp, err := MkdirTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "run.sh"), []byte("echo"), 0o600)
	if err := CommitDir(tmp, filepath.Join(dir, "v1")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "v1", "run.sh")); err != nil || string(b) != "echo" {
		t.Errorf("v1/run.sh: %q %v", b, err)
	}
	crashed, err := MkdirTemp(dir) // as a crash would leave it
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(crashed, "lib"), 0o700)
	os.WriteFile(filepath.Join(crashed, "lib", "a.jar"), []byte("x"), 0o400)
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "v1" {
		t.Errorf("folder holds %q, want only v1", got)
	}
}
