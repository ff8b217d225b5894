// Package runtime starts and stops instances. The process driver runs each
// instance as a child process in its own session (and process group) on a
// loopback port, in a cgroup of its own where the daemon can make one, and
// confined by its Sandbox. An instance writes its output to files itself,
// so nothing is lost while no daemon runs, and it can outlive the daemon: a
// later daemon adopts it by pid and start time.
package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/internal/safego"
)

const (
	// killWait bounds the wait for a process group after SIGKILL.
	killWait = 5 * time.Second
	// tailLines is how many of its last output lines an instance keeps, to
	// say why it died.
	tailLines = 20
)

// ErrGone means the process to adopt is not there any more (or its pid now
// belongs to another process).
var ErrGone = errors.New("process is gone")

// Spec says what to run.
type Spec struct {
	ID string
	// Dir is the working directory, the release directory.
	Dir string
	// Command is run by /bin/sh -c. Starting it with "exec" makes the app
	// itself the group leader.
	Command string
	Env     []string
	Port    int
	// LogDir holds the instance's output files, ID.stdout and ID.stderr,
	// which the process writes itself.
	LogDir string
	// Output is called with each line the instance writes, stream "stdout"
	// or "stderr", from the goroutine that follows that file.
	Output func(stream, line string)
	// MaxUnread bounds, in bytes, the output an instance may have written
	// to one of its files that has not been read yet; past it the oldest
	// unread output is skipped, with a line that says so. 0 means no bound.
	MaxUnread int64
	// Logger gets what goes wrong in the goroutines that watch the
	// instance; slog.Default() when nil.
	Logger *slog.Logger
	// Sandbox confines the instance.
	Sandbox Sandbox
	// Cgroup is the cgroup (v2) directory the instance runs in, which Start
	// makes and which is removed once the instance has exited; "" for
	// none (see Cgroups).
	Cgroup string
}

// Instance is a handle on a running process group. One goroutine waits for
// the process; Done is closed when it has exited.
type Instance struct {
	ID         string
	Port       int
	PID        int
	StartTicks uint64
	// Adopted is true for a process an earlier daemon started.
	Adopted bool
	// Cgroup is the instance's cgroup directory, "" if it has none.
	Cgroup string

	log      *slog.Logger
	done     chan struct{}
	exitDesc string // valid after done: "exit code 1", "killed by signal …"
	// stopSignal is the last signal Stop sent (0 before it did), so that
	// an exit it asked for is described as a stop, not as a failure.
	stopSignal atomic.Int32
	detach     chan struct{} // closed by Detach: stop following, leave it running
	detachMu   sync.Once
	readers    sync.WaitGroup

	mu   sync.Mutex // guards tail and seen
	tail []string
	// seen are the processes of an instance without a cgroup found when
	// it was told to stop, killed with it (see processTree).
	seen []proc
}

// Start starts spec's command in a new session, in its cgroup if it has
// one, confined by its sandbox.
func Start(spec Spec) (*Instance, error) {
	if err := os.MkdirAll(spec.LogDir, 0o700); err != nil {
		return nil, err
	}
	files := make([]*os.File, 2)
	for i, stream := range streams {
		f, err := os.OpenFile(outputPath(spec, stream), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			closeAll(files)
			return nil, err
		}
		files[i] = f
	}
	defer closeAll(files)
	offsets := [2]int64{size(files[0]), size(files[1])}
	cmd, err := spec.Sandbox.command(spec.Command)
	if err != nil {
		return nil, fmt.Errorf("starting instance %s: %w", spec.ID, err)
	}
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	cmd.Stdout, cmd.Stderr = files[0], files[1]
	if spec.Cgroup != "" {
		fd, err := makeCgroup(spec.Cgroup)
		if err != nil {
			return nil, fmt.Errorf("starting instance %s: %w", spec.ID, err)
		}
		defer syscall.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	if err := cmd.Start(); err != nil {
		if spec.Cgroup != "" {
			os.Remove(spec.Cgroup)
		}
		return nil, fmt.Errorf("starting instance %s: %w", spec.ID, err)
	}
	inst := newInstance(spec, cmd.Process.Pid)
	inst.StartTicks, _ = StartTicks(inst.PID)
	go inst.watch(func() string {
		err := cmd.Wait()
		return describeExit(cmd.ProcessState, err, syscall.Signal(inst.stopSignal.Load()))
	})
	inst.follow(spec, offsets)
	return inst, nil
}

// Adopt takes over a process that an earlier daemon started from spec, if
// pid is still the process that started at startTicks. Its output is
// followed from where the earlier daemon stopped reading.
func Adopt(spec Spec, pid int, startTicks uint64) (*Instance, error) {
	pidfd, err := openPidfd(pid)
	if err != nil {
		return nil, fmt.Errorf("%w: pid %d: %v", ErrGone, pid, err)
	}
	// Checked after opening the pidfd, which pins the process: a match now
	// cannot be a later process that reused the pid.
	if ticks, err := StartTicks(pid); err != nil || ticks != startTicks {
		syscall.Close(pidfd)
		return nil, fmt.Errorf("%w: pid %d is another process now", ErrGone, pid)
	}
	inst := newInstance(spec, pid)
	inst.StartTicks, inst.Adopted = startTicks, true
	if spec.Cgroup != "" {
		if _, err := os.Stat(spec.Cgroup); err != nil {
			inst.Cgroup = "" // it has none after all
		}
	}
	go inst.watch(func() string {
		defer syscall.Close(pidfd)
		waitPidfd(pidfd)
		return "exited (an earlier daemon started it, so its exit status is unknown)"
	})
	inst.follow(spec, [2]int64{savedOffset(outputPath(spec, streams[0])), savedOffset(outputPath(spec, streams[1]))})
	return inst, nil
}

func newInstance(spec Spec, pid int) *Instance {
	log := spec.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Instance{ID: spec.ID, Port: spec.Port, PID: pid, Cgroup: spec.Cgroup, log: log, done: make(chan struct{}), detach: make(chan struct{})}
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

func size(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// watch is the instance's exit watcher: wait blocks until the process has
// exited and describes how. Whatever happens in wait, Done is closed in the
// end, or its owner would wait forever. If wait panics, the process group
// is killed (it may still be running, unwatched) and reported as exited.
func (i *Instance) watch(wait func() string) {
	desc := "killed: the daemon lost track of it after an internal error (see its log)"
	safego.Run(i.log, "exit watcher of instance "+i.ID, func() { desc = wait() })
	i.exited(desc)
}

func (i *Instance) exited(desc string) {
	i.exitDesc = desc
	// The leader is gone; take down anything it left behind, and wait
	// (killWait at most) until it is gone too.
	i.signalAll(syscall.SIGKILL)
	if i.Cgroup != "" {
		killCgroup(i.Cgroup) // and remove it
	} else {
		i.mu.Lock()
		seen := slices.Clone(i.seen)
		i.mu.Unlock()
		waitGone(seen, killWait)
	}
	close(i.done)
}

// signalAll sends sig to every process of the instance: its process
// group, and every process in its cgroup, or without one, the processes
// processTree finds (and those it found before).
func (i *Instance) signalAll(sig syscall.Signal) {
	if i.PID <= 0 { // -0 would be the daemon's own group
		return
	}
	if i.Cgroup != "" {
		syscall.Kill(-i.PID, sig)
		if sig == syscall.SIGKILL && os.WriteFile(filepath.Join(i.Cgroup, "cgroup.kill"), []byte("1"), 0) == nil {
			return
		}
		for _, pid := range cgroupPIDs(i.Cgroup) {
			syscall.Kill(pid, sig)
		}
		return
	}
	// The tree first: once the leader is gone, its children belong to
	// another parent and cannot be told from any other process.
	tree := processTree(i.PID)
	syscall.Kill(-i.PID, sig)
	i.mu.Lock()
	i.seen = append(i.seen, tree...)
	seen := slices.Clone(i.seen)
	i.mu.Unlock()
	for _, p := range seen {
		p.signal(sig)
	}
}

// describeExit says how a process ended. stop is the last signal Stop
// sent it, 0 if none: a process that ends on the SIGTERM it was sent, by
// the signal or with exit code 143 (128 + SIGTERM, as a JVM and a shell
// exit on it), did what was asked, and is not reported with a code that
// reads like a failure.
func describeExit(ps *os.ProcessState, err error, stop syscall.Signal) string {
	if ps == nil {
		return fmt.Sprintf("wait failed: %v", err)
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case stop != 0 && (ws.Signaled() && ws.Signal() == syscall.SIGTERM || ws.Exited() && ws.ExitStatus() == 128+int(syscall.SIGTERM)):
		return "ended on SIGTERM"
	case stop == syscall.SIGKILL && ws.Signaled() && ws.Signal() == syscall.SIGKILL:
		return "killed by SIGKILL: it had not ended within the stop grace period"
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exit code %d", ps.ExitCode())
}

func (i *Instance) remember(line string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.tail) == tailLines {
		i.tail = i.tail[1:]
	}
	i.tail = append(i.tail, line)
}

// Done is closed when the instance's process has exited.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Exit describes how the process ended ("exit code 1"); call after Done.
func (i *Instance) Exit() string {
	<-i.done
	return i.exitDesc
}

// LastLines returns the last lines the instance wrote.
func (i *Instance) LastLines() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.tail...)
}

// Detach stops following the instance's output, saving how far it got, and
// leaves the process running for a later daemon to adopt.
func (i *Instance) Detach() {
	i.detachMu.Do(func() { close(i.detach) })
	i.readers.Wait()
}

// WaitOutput waits until all the output of an exited instance has been
// passed to Output.
func (i *Instance) WaitOutput() { i.readers.Wait() }

// Stop ends the instance: SIGTERM to all its processes (its group, its
// cgroup or the processes found by processTree), up to grace for the
// leader to exit, then SIGKILL to all of them and a bounded wait. It
// returns once the leader has exited and the rest been killed, or the
// bounded wait is over.
func (i *Instance) Stop(grace time.Duration) error {
	select {
	case <-i.done:
		return nil
	default:
	}
	i.stopSignal.Store(int32(syscall.SIGTERM))
	i.signalAll(syscall.SIGTERM)
	select {
	case <-i.done:
		return nil
	case <-time.After(grace):
	}
	i.stopSignal.Store(int32(syscall.SIGKILL))
	i.signalAll(syscall.SIGKILL)
	select {
	case <-i.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("instance %s (pid %d) did not exit %s after SIGKILL", i.ID, i.PID, killWait)
	}
}

// RemoveOutput deletes the instance's output files; call once it has exited
// and its output has been read.
func RemoveOutput(spec Spec) {
	for _, s := range streams {
		os.Remove(outputPath(spec, s))
		os.Remove(outputPath(spec, s) + offsetSuffix)
	}
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var streams = [2]string{"stdout", "stderr"}

func outputPath(spec Spec, stream string) string {
	return filepath.Join(spec.LogDir, spec.ID+"."+stream)
}
