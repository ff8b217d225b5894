package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/slipway-dev/slipway/internal/runtime"
)

// passableDir is a new data directory whose parents (made 0700 by the
// testing package) let others pass.
func passableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "data")
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestSecureDataDir: under user isolation the data directory and apps/
// let others pass, and nothing else in it lets them further.
func TestSecureDataDir(t *testing.T) {
	data := passableDir(t)
	for _, d := range []string{"artifacts", "apps", "etcd"} {
		os.MkdirAll(filepath.Join(data, d), 0o755)
	}
	os.WriteFile(filepath.Join(data, "admin.token"), []byte("t"), 0o644)
	if err := SecureDataDir(data, runtime.IsolationUser); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"": 0o711, "artifacts": 0o700, "etcd": 0o700, "admin.token": 0o600, "apps": 0o711} {
		if got := mode(t, filepath.Join(data, name)); got != want {
			t.Errorf("%q: mode %04o, want %04o", name, got, want)
		}
	}
	if err := SecureDataDir(data, runtime.IsolationLandlock); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, data); got != 0o700 {
		t.Errorf("under landlock isolation the data directory is %04o, want 0700", got)
	}
}

// TestSecureDataDirRefusesUnreachable: under user isolation, a data
// directory that the apps' users cannot reach is refused, saying where.
func TestSecureDataDirRefusesUnreachable(t *testing.T) {
	closed := filepath.Join(t.TempDir(), "closed")
	os.Mkdir(closed, 0o700)
	err := SecureDataDir(filepath.Join(closed, "data"), runtime.IsolationUser)
	if !errors.Is(err, runtime.ErrIsolation) {
		t.Errorf("SecureDataDir under a 0700 directory: %v, want ErrIsolation", err)
	}
}

func ownerOf(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// TestAppUIDs: each app gets a uid of its own, kept across calls and
// recorded by its storage's owner; a deleted app's uid is given again; an
// app's storage from before it had one becomes its.
func TestAppUIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to chown")
	}
	const base = 2_100_000_000
	m := &Manager{opts: Options{DataDir: passableDir(t), AppUIDBase: base, Isolation: runtime.IsolationUser}}
	os.MkdirAll(filepath.Join(m.storageDir("old"), "sub"), 0o700)
	os.WriteFile(filepath.Join(m.storageDir("old"), "sub", "f"), nil, 0o600)
	for _, tc := range []struct {
		app  string
		want uint32
	}{{"a", base}, {"b", base + 1}, {"a", base}, {"old", base + 2}} {
		got, err := m.appUID(tc.app)
		if err != nil || got != tc.want {
			t.Errorf("appUID(%s) = %d, %v; want %d", tc.app, got, err, tc.want)
		}
	}
	if uid, _ := ownerOf(t, filepath.Join(m.storageDir("old"), "sub", "f")); uid != base+2 {
		t.Errorf("a file of old's earlier storage belongs to %d, want %d", uid, base+2)
	}
	os.RemoveAll(m.appDir("a"))
	if got, _ := m.appUID("c"); got != base {
		t.Errorf("after a is deleted, c gets %d, want a's %d", got, base)
	}
}

// TestOpenLayout: the release directory is root's, the app's group may
// enter it and read all of it, and the way to it lets others pass only.
func TestOpenLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to chown")
	}
	m := &Manager{opts: Options{DataDir: passableDir(t), AppUIDBase: 2_100_000_000, Isolation: runtime.IsolationUser}}
	rel := m.releaseDir("a", 1)
	os.MkdirAll(filepath.Join(rel, "lib"), 0o700)
	os.WriteFile(filepath.Join(rel, "lib", "x.jar"), nil, 0o600)
	os.WriteFile(filepath.Join(rel, "run.sh"), nil, 0o700)
	uid, err := m.openLayout("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if owner, group := ownerOf(t, rel); owner != 0 || group != uid || mode(t, rel) != 0o750 {
		t.Errorf("release directory %d:%d %04o, want 0:%d 0750", owner, group, mode(t, rel), uid)
	}
	for name, want := range map[string]os.FileMode{"lib": 0o755, "lib/x.jar": 0o644, "run.sh": 0o755} {
		if got := mode(t, filepath.Join(rel, name)); got != want {
			t.Errorf("%s: %04o, want %04o", name, got, want)
		}
	}
	for _, d := range []string{filepath.Join(m.opts.DataDir, "apps"), m.appDir("a"), filepath.Dir(rel), filepath.Join(m.appDir("a"), "tmp")} {
		if got := mode(t, d); got != 0o711 {
			t.Errorf("%s: %04o, want 0711", d, got)
		}
	}
}
