package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cgroups gives each instance a cgroup (v2) of its own, under one
// directory in the daemon's own cgroup, so that stopping an instance stops
// every process it started, however it detached: setsid, a double fork,
// a new process group. cgroup.kill (Linux 5.14) kills them all at once.
// The path of each instance's cgroup is recorded with the instance, so a
// later daemon finds it even if it runs in another cgroup itself.
type Cgroups struct {
	dir string
}

// NewCgroups makes the directory name under the daemon's own cgroup, and
// fails, saying why, where that cannot work: no cgroup v2 hierarchy, no
// right to make a cgroup there (not root, and no delegation), or a kernel
// without cgroup.kill.
func NewCgroups(name string) (*Cgroups, error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mount, own, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("making cgroup %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("cgroup %s has no cgroup.kill (Linux 5.14 or later has it)", dir)
	}
	return &Cgroups{dir: dir}, nil
}

// Dir is the directory that holds the instances' cgroups.
func (c *Cgroups) Dir() string { return c.dir }

// Path is the cgroup of the instance id.
func (c *Cgroups) Path(id string) string { return filepath.Join(c.dir, id) }

// Sweep kills what runs in the cgroups of instances not in keep and
// removes them: those a daemon that died left behind.
func (c *Cgroups) Sweep(keep map[string]bool) {
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		if e.IsDir() && !keep[e.Name()] {
			killCgroup(filepath.Join(c.dir, e.Name()))
		}
	}
}

// Close removes the directory, if no instance's cgroup is left in it.
func (c *Cgroups) Close() { os.Remove(c.dir) }

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted:
// /sys/fs/cgroup on most systems, /sys/fs/cgroup/unified on hybrid ones.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4], nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// ownCgroup is the daemon's cgroup v2 path ("0::PATH" in /proc/self/cgroup).
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("the daemon is in no cgroup v2")
}

// makeCgroup makes the cgroup at path and opens it, for clone to start a
// process in it (SysProcAttr.CgroupFD).
func makeCgroup(path string) (int, error) {
	if err := os.Mkdir(path, 0o755); err != nil {
		return -1, fmt.Errorf("making cgroup: %w", err)
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(path)
		return -1, fmt.Errorf("opening cgroup: %w", err)
	}
	return fd, nil
}

// cgroupPIDs lists the processes in the cgroup at path.
func cgroupPIDs(path string) []int {
	b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cgroupWait bounds the wait for a killed cgroup to empty.
const cgroupWait = 5 * time.Second

// killCgroup kills every process in the cgroup at path, waits until it is
// empty (cgroupWait at most) and removes it. It returns how many processes
// it found there.
func killCgroup(path string) int {
	n := len(cgroupPIDs(path))
	if err := os.WriteFile(filepath.Join(path, "cgroup.kill"), []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		for _, pid := range cgroupPIDs(path) { // cannot happen with cgroup.kill there; still, do what can be done
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(cgroupWait)
	for populated(path) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(path)
	return n
}

// populated reads whether any process is left in the cgroup at path (or
// in one below it).
func populated(path string) bool {
	b, err := os.ReadFile(filepath.Join(path, "cgroup.events"))
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "populated 1")
}
