package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Isolation is how instances are kept from what is not theirs: the
// daemon's state, the artifacts, other apps' files.
//
//   - user: each app runs as a user of its own (a uid with no passwd entry,
//     see the deploy package) with no supplementary groups; file
//     permissions do the rest. Needs root.
//   - landlock: the instance runs as the daemon's user, confined by a
//     Landlock ruleset to its release directory (read-only), its storage
//     and private temp directory (read-write) and the system's read-only
//     directories. Signals and abstract Unix sockets cannot reach outside
//     the instance's own processes (Landlock ABI 6 and later).
//   - none: the instance can do whatever the daemon's user can.
//
// auto is user as root, landlock otherwise.
type Isolation string

// Isolation modes.
const (
	IsolationAuto     Isolation = "auto"
	IsolationUser     Isolation = "user"
	IsolationLandlock Isolation = "landlock"
	IsolationNone     Isolation = "none"
)

// ErrIsolation is a mode that does not exist or cannot work here.
var ErrIsolation = errors.New("isolation mode")

// ParseIsolation checks a mode's name; "" is auto.
func ParseIsolation(s string) (Isolation, error) {
	switch m := Isolation(s); m {
	case "":
		return IsolationAuto, nil
	case IsolationAuto, IsolationUser, IsolationLandlock, IsolationNone:
		return m, nil
	}
	return "", fmt.Errorf("%w %q: want auto, user, landlock or none", ErrIsolation, s)
}

// Resolve turns auto into the mode this process can give: user as root,
// landlock otherwise. It refuses user without root.
func (m Isolation) Resolve() (Isolation, error) {
	root := os.Geteuid() == 0
	switch {
	case m == IsolationAuto && root:
		return IsolationUser, nil
	case m == IsolationAuto:
		return IsolationLandlock, nil
	case m == IsolationUser && !root:
		return "", fmt.Errorf("%w user needs root, to run each app as a user of its own; run as root or use --isolation=landlock", ErrIsolation)
	}
	return m, nil
}

// Sandbox confines one instance; the zero value confines nothing.
type Sandbox struct {
	Mode Isolation
	// UID and GID are the user and group the instance runs as, without
	// supplementary groups (user mode).
	UID, GID uint32
	// ReadOnly are directories the instance may read and execute from,
	// ReadWrite directories it may also write, besides the system's
	// read-only directories (landlock mode). They must exist.
	ReadOnly, ReadWrite []string
	// Hidden are paths that stay out of the instance's reach even when a
	// system directory holds them (the data directory, TLS keys): such a
	// directory is granted entry by entry, without them (landlock mode).
	Hidden []string
}

// systemDirs are the directories a confined instance may read and execute
// from, those that exist. /tmp is not among them: each instance has a
// private temp directory (TMPDIR).
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys",
	"/run/systemd/resolve"} // where /etc/resolv.conf often points

// deviceFiles are the device files a confined instance may read and write.
var deviceFiles = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}

// readOnlyDirs is what a landlock sandbox may read: the system's
// directories and the JDK's (JAVA_HOME, and the one the java on PATH is
// in), without the hidden paths, then the sandbox's own.
func (sb Sandbox) readOnlyDirs() []string {
	dirs := slices.Clone(systemDirs)
	if home := os.Getenv("JAVA_HOME"); home != "" {
		dirs = append(dirs, home)
	}
	if java, err := exec.LookPath("java"); err == nil {
		if real, err := filepath.EvalSymlinks(java); err == nil {
			dirs = append(dirs, filepath.Dir(filepath.Dir(real))) // …/jdk/bin/java → …/jdk
		}
	}
	hidden := resolveAll(sb.Hidden)
	var out []string
	for _, d := range dirs {
		out = append(out, withoutHidden(d, hidden)...)
	}
	return append(out, sb.ReadOnly...)
}

func resolveAll(paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		} else if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		out = append(out, p)
	}
	return out
}

// withoutHidden returns dir, or, when dir holds a hidden path, its
// entries that hold none, recursively, so that granting them never grants
// a hidden path. Landlock has allow rules only, so this is how a deny is
// spelled. Paths that do not exist are left out.
func withoutHidden(dir string, hidden []string) []string {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	holds := false
	for _, h := range hidden {
		rel, err := filepath.Rel(real, h)
		if err != nil || !(rel == "." || filepath.IsLocal(rel)) {
			continue
		}
		if rel == "." {
			return nil // dir is itself hidden
		}
		holds = true
	}
	if !holds {
		return []string{real}
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.IsDir() {
		return nil
	}
	entries, _ := os.ReadDir(real)
	var out []string
	for _, e := range entries {
		out = append(out, withoutHidden(filepath.Join(real, e.Name()), hidden)...)
	}
	return out
}

// command returns the process that runs the instance's command under sb:
// /bin/sh -c, as the app's user in user mode, behind the Landlock
// launcher (this very binary, see Launch) in landlock mode.
func (sb Sandbox) command(command string) (*exec.Cmd, error) {
	// A session of its own: no signal meant for the daemon's terminal or
	// group reaches it, and it lives on if the daemon dies.
	attr := &syscall.SysProcAttr{Setsid: true}
	switch sb.Mode {
	case IsolationUser:
		if sb.UID == 0 {
			return nil, fmt.Errorf("%w user: the app has no user of its own", ErrIsolation)
		}
		attr.Credential = &syscall.Credential{Uid: sb.UID, Gid: sb.GID, Groups: []uint32{}}
	case IsolationLandlock:
		cmd := exec.Command("/proc/self/exe", sb.launcherArgs(command)...)
		cmd.SysProcAttr = attr
		return cmd, nil
	case IsolationNone, "":
	default:
		return nil, fmt.Errorf("%w %q cannot start an instance", ErrIsolation, sb.Mode)
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.SysProcAttr = attr
	return cmd, nil
}

// launcherArgs are the launcher's arguments: what it may read, what it may
// write, then the command line to exec.
func (sb Sandbox) launcherArgs(command string) []string {
	args := []string{LauncherArg}
	for _, d := range sb.readOnlyDirs() {
		args = append(args, "--ro", d)
	}
	for _, d := range sb.ReadWrite {
		args = append(args, "--rw", d)
	}
	return append(args, "--", "/bin/sh", "-c", command)
}

// String describes sb for the daemon's log.
func (sb Sandbox) String() string {
	switch sb.Mode {
	case IsolationUser:
		return fmt.Sprintf("user %d:%d", sb.UID, sb.GID)
	case IsolationLandlock:
		return "landlock: read-only " + strings.Join(sb.ReadOnly, ", ") + "; read-write " + strings.Join(sb.ReadWrite, ", ")
	}
	return "none"
}
