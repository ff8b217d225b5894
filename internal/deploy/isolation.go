package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/slipway-dev/slipway/internal/runtime"
)

// What an instance may reach, and how it is kept from the rest.
//
// An instance uses, of the data directory DATA:
//
//	DATA/apps/APP/releases/vN   its release: read-only, its working directory
//	DATA/apps/APP/storage       the app's storage, kept across releases: read-write
//	DATA/apps/APP/tmp/ID        its private temp directory (TMPDIR,
//	                            java.io.tmpdir), removed when it stops
//	DATA/apps/APP/leases/ID     its lease directory (SLIPWAY_LEASE_DIR): read-only;
//	                            the file NAME there says it holds the single
//	                            runner lease NAME; removed when it stops
//
// Its output files (DATA/apps/APP/instances) are opened by the daemon and
// handed to it; it needs no path to them. Everything else in DATA — the
// store, admin.token, the artifacts, the logs, other apps — is the
// daemon's.
//
// Under user isolation, app APP runs as uid U and gid U, without
// supplementary groups and without a passwd entry. U is the owner of
// DATA/apps/APP/storage: the file system itself records which uid an app
// has, so nothing else needs to. An app gets the first uid from
// AppUIDBase on (AppUIDCount of them) that no other app's storage has and
// the system does not name as a user or group; deleting the app frees it. The permissions:
//
//	DATA, DATA/apps, DATA/apps/APP,      0711 root: anyone may pass through,
//	  …/releases, …/tmp, …/leases        nobody but root may list them
//	every other entry of DATA            0700 or 0600 root (see SecureDataDir)
//	…/releases/vN                        root:U 0750; what is inside is readable
//	                                     by all, which here means by root and U
//	…/storage, …/tmp/ID                  U:U 0700
//	…/leases/ID                          root:U 0750, its files 0644: U reads, only root writes
//	…/instances                          0700 root
//
// Each directory above DATA must let others pass too (o+x), which the
// daemon checks at start. Under landlock and none isolation the layout is
// the same and everything is the daemon user's, 0700.

// Bounds of the uids given to apps.
const (
	// DefaultAppUIDBase is the first uid given to an app: high enough to
	// meet no account a system makes, below 2^31 for software that keeps
	// uids in signed integers.
	DefaultAppUIDBase = 2_000_000_000
	// AppUIDCount is how many uids apps may have, from the base on.
	AppUIDCount = 65536
)

// ErrNoUID means every uid of the apps' range is taken.
var ErrNoUID = errors.New("no uid left for another app")

func (m *Manager) tmpDir(app, id string) string { return filepath.Join(m.appDir(app), "tmp", id) }

// user reports whether instances run as users of their own.
func (m *Manager) user() bool { return m.opts.Isolation == runtime.IsolationUser }

// appUID returns app's uid, giving it one, and its storage directory, if
// it has none yet.
func (m *Manager) appUID(app string) (uint32, error) {
	m.uidMu.Lock()
	defer m.uidMu.Unlock()
	storage := m.storageDir(app)
	if uid, ok := m.uidOf(storage); ok {
		return uid, nil
	}
	used := make(map[uint32]bool)
	dirs, _ := filepath.Glob(filepath.Join(m.opts.DataDir, "apps", "*", "storage"))
	for _, d := range dirs {
		if uid, ok := m.uidOf(d); ok {
			used[uid] = true
		}
	}
	for uid := m.opts.AppUIDBase; uid < m.opts.AppUIDBase+AppUIDCount; uid++ {
		if used[uid] || accountExists(uid) {
			continue
		}
		// Storage that an app wrote before it had a uid of its own
		// (isolation was none, or Slipway older) becomes its.
		if err := os.MkdirAll(storage, 0o700); err != nil {
			return 0, err
		}
		if err := chownTree(storage, uid); err != nil {
			return 0, fmt.Errorf("giving app %s its storage: %w", app, err)
		}
		return uid, nil
	}
	return 0, fmt.Errorf("%w (%d from %d are all in use)", ErrNoUID, AppUIDCount, m.opts.AppUIDBase)
}

// uidOf returns the owner of dir if it is an app's uid.
func (m *Manager) uidOf(dir string) (uint32, bool) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, false
	}
	uid := fi.Sys().(*syscall.Stat_t).Uid
	return uid, uid >= m.opts.AppUIDBase && uid < m.opts.AppUIDBase+AppUIDCount
}

// accountExists reports whether the system names uid as a user or a
// group (an app's gid is its uid).
func accountExists(uid uint32) bool {
	id := strconv.FormatUint(uint64(uid), 10)
	if _, err := user.LookupId(id); err == nil {
		return true
	}
	_, err := user.LookupGroupId(id)
	return err == nil
}

func chownTree(dir string, uid uint32) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(uid), int(uid))
	})
}

// openLayout sets the permissions of rel's app under user isolation (see
// above), once its release directory is laid out. It returns the app's
// uid.
func (m *Manager) openLayout(app string, release int) (uint32, error) {
	uid, err := m.appUID(app)
	if err != nil {
		return 0, err
	}
	for _, d := range []string{filepath.Join(m.opts.DataDir, "apps"), m.appDir(app), filepath.Dir(m.releaseDir(app, release)), filepath.Join(m.appDir(app), "tmp")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return 0, err
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return 0, err
		}
	}
	return uid, m.openRelease(m.releaseDir(app, release), uid)
}

// openRelease makes the release directory dir root:uid 0750 and what is
// in it readable (and executable where it was) by all, which only root
// and uid can reach. A jar is a hard link to the artifact, which becomes
// readable too, inside the artifact store that nobody else can enter.
func (m *Manager) openRelease(dir string, uid uint32) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm() | 0o444
		if d.IsDir() || mode&0o100 != 0 {
			mode |= 0o111
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		return fmt.Errorf("opening the release directory to its app: %w", err)
	}
	if err := os.Chown(dir, 0, int(uid)); err != nil {
		return err
	}
	return os.Chmod(dir, 0o750)
}

// makeTmp makes the private temp directory of instance id of app.
func (m *Manager) makeTmp(app, id string, uid uint32) (string, error) {
	dir := m.tmpDir(app, id)
	parent := filepath.Dir(dir)
	mode := os.FileMode(0o700)
	if m.user() {
		mode = 0o711
	}
	if err := os.MkdirAll(parent, mode); err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("making the instance's temp directory: %w", err)
	}
	if m.user() {
		if err := os.Chown(dir, int(uid), int(uid)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (m *Manager) leaseDir(app, id string) string { return filepath.Join(m.appDir(app), "leases", id) }

// makeLeaseDir makes the lease directory of instance id of app, which it
// may read but not write: only the daemon says who holds a lease.
func (m *Manager) makeLeaseDir(app, id string, uid uint32) error {
	dir := m.leaseDir(app, id)
	mode := os.FileMode(0o700)
	if m.user() {
		mode = 0o711
	}
	if err := os.MkdirAll(filepath.Dir(dir), mode); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("making the instance's lease directory: %w", err)
	}
	if m.user() {
		if err := os.Chown(dir, 0, int(uid)); err != nil {
			return err
		}
		return os.Chmod(dir, 0o750)
	}
	return nil
}

// sandbox is how instance id of app's release runs.
func (m *Manager) sandbox(app string, release int, id string, uid uint32) runtime.Sandbox {
	switch m.opts.Isolation {
	case runtime.IsolationUser:
		return runtime.Sandbox{Mode: runtime.IsolationUser, UID: uid, GID: uid}
	case runtime.IsolationLandlock:
		return runtime.Sandbox{Mode: runtime.IsolationLandlock,
			ReadOnly: []string{m.releaseDir(app, release), m.leaseDir(app, id)}, ReadWrite: []string{m.storageDir(app), m.tmpDir(app, id)},
			Hidden: append([]string{m.opts.DataDir}, m.opts.Hidden...)}
	}
	return runtime.Sandbox{Mode: runtime.IsolationNone}
}

// SecureDataDir makes the data directory if need be and sets its
// permissions for mode: 0700, or under user isolation 0711 with apps/
// 0711 too and every other entry made reachable by its owner only (a
// symbolic link is left as it is), after checking that
// every directory above it lets others pass (those it makes do). Call it
// before anything else uses dir.
func SecureDataDir(dir string, mode runtime.Isolation) error {
	if mode != runtime.IsolationUser {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		return os.Chmod(dir, 0o700) // it holds tokens and artifacts
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	if err := checkPassable(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			continue
		}
		perm := fi.Mode().Perm() & 0o700
		if e.Name() == "apps" {
			perm = 0o711
		}
		if err := os.Chmod(filepath.Join(dir, e.Name()), perm); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o711)
}

// checkPassable checks that the apps' users can pass through every
// directory above dir.
func checkPassable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%w user: the apps' users cannot reach the data directory %s, because %s is mode %04o: "+
				"let others pass (chmod o+x %s), pick a --data-dir they can reach (like /var/lib/slipway), or use --isolation=landlock",
				runtime.ErrIsolation, abs, d, fi.Mode().Perm(), d)
		}
		if d == "/" {
			return nil
		}
	}
}
