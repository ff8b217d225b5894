package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cloudflare/tableflip"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/safego"
)

// An upgrade replaces the running process with a new one of the binary at
// the same path, without refusing a connection and without stopping an
// instance. cloudflare/tableflip starts the new process with the
// listening sockets (the very sockets: connections that arrive meanwhile
// wait in their accept queue, they are never refused) and tells the old
// one when the new one is ready. Slipway adds one step between: the new
// process needs the data directory, whose store only one process can
// open. So:
//
//  1. The old process starts the new one (tableflip), and serves on.
//  2. The new one takes the sockets, but accepts nothing yet, and asks the
//     old one for the data directory over the handoff pipe. A binary that
//     fails before this point has changed nothing: the old process says
//     why and serves on.
//  3. The old process stops its API (its requests in flight finish; API
//     connections wait in the accept queue), cancels the deployments that
//     have not switched traffic, closes its store leaving the instances
//     running, and lets go of the data directory's lock. Its router goes
//     on serving all along: it needs no store.
//  4. The new process takes the lock, opens the store, adopts the
//     instances (as after a restart: same pids), serves the router and
//     the API, and tells the old one it is ready.
//  5. The old process stops accepting, finishes its requests in flight,
//     tells its WebSockets and event streams to reconnect, and exits.
//
// If the new process fails after step 3, the old one takes the data
// directory back, adopts its instances again, and serves on.
const (
	// upgradeTimeout bounds the new process's start: from its exec to
	// its readiness, the old process's API drain included. Past it the
	// new process is killed and the old one serves on.
	upgradeTimeout = 2 * time.Minute
	// handoffName names the pipe a new process asks for the data
	// directory over, among the files tableflip passes on.
	handoffName = "slipway-handoff"
)

// ErrUpgrade is the sentinel of a failed upgrade.
var ErrUpgrade = errors.New("upgrade failed")

// upgrader is tableflip's Upgrader with the handoff pipe.
type upgrader struct {
	*tableflip.Upgrader
	// handoff is the read end of this process's handoff pipe, whose
	// write end tableflip passes to every new process; asks gets the pid
	// each one writes there.
	handoff *os.File
	asks    chan int
	// stopped is closed by Stop: a handoff reader that panicked is not
	// restarted after it.
	stopped chan struct{}
	// parent is the old process's handoff pipe, in a process an upgrade
	// started; nil otherwise.
	parent *os.File
	// parentGone is closed once the old process has exited, in a process
	// an upgrade started; stopWaiting ends the goroutine that closes it.
	parentGone  chan struct{}
	stopWaiting context.CancelFunc
}

func newUpgrader(log *slog.Logger) (*upgrader, error) {
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: upgradeTimeout})
	if err != nil {
		return nil, fmt.Errorf("preparing for upgrades: %w", err)
	}
	u := &upgrader{Upgrader: upg, asks: make(chan int, 1), stopped: make(chan struct{})}
	if upg.HasParent() {
		if u.parent, err = upg.Fds.File(handoffName); err != nil || u.parent == nil {
			upg.Stop()
			return nil, fmt.Errorf("%w: the old process passed no handoff pipe (%v): it is not a slipway this one can take over from; restart the daemon instead", ErrUpgrade, err)
		}
		u.watchParent()
	}
	r, w, err := os.Pipe()
	if err != nil {
		upg.Stop()
		return nil, err
	}
	defer w.Close() // tableflip keeps a copy for the new processes
	if err := upg.Fds.AddFile(handoffName, w); err != nil {
		r.Close()
		upg.Stop()
		return nil, err
	}
	u.handoff = r
	go u.passAsks(log, r)
	return u, nil
}

// watchParent closes parentGone once the old process has exited.
// tableflip's WaitForParent with a context that is already done cannot
// tell: its select then picks at random between the parent's exit and
// the context's end, so an upgrade long after the old process exited was
// refused about every other time.
func (u *upgrader) watchParent() {
	ctx, cancel := context.WithCancel(context.Background())
	u.parentGone, u.stopWaiting = make(chan struct{}), cancel
	go func() {
		u.WaitForParent(ctx) // an error says how the old process left, which does not matter here
		if ctx.Err() == nil {
			close(u.parentGone)
		}
	}()
}

// parentExited reports whether the process this one replaced has exited:
// true in a process no upgrade started.
func (u *upgrader) parentExited() bool {
	if u.parentGone == nil {
		return true
	}
	select {
	case <-u.parentGone:
		return true
	default:
		return false
	}
}

// child reports whether an upgrade started this process.
func (u *upgrader) child() bool { return u.parent != nil }

// passAsks runs readAsks on the handoff pipe r until Stop, and again
// after a panic: a reader gone would leave every later upgrade unheard
// until it timed out.
func (u *upgrader) passAsks(log *slog.Logger, r io.Reader) {
	safego.Supervise(log, "upgrade handoff reader", u.stopped, 0, func() { u.readAsks(log, r) })
}

// readAsks passes on the pid each new process writes to the handoff
// pipe r. It ends when Stop closes the pipe.
func (u *upgrader) readAsks(log *slog.Logger, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		pid, err := strconv.Atoi(sc.Text())
		if err != nil {
			log.Warn("upgrade: the new process wrote nonsense to the handoff pipe", "text", sc.Text())
			continue
		}
		select {
		case u.asks <- pid:
		default: // one is waiting already; a new process asks once
		}
	}
}

// askForDataDir tells the old process that this one, started by an
// upgrade, has the sockets and wants the data directory.
func (u *upgrader) askForDataDir() error {
	defer u.parent.Close()
	if _, err := fmt.Fprintf(u.parent, "%d\n", os.Getpid()); err != nil {
		return fmt.Errorf("%w: asking the old process for the data directory: %v", ErrUpgrade, err)
	}
	return nil
}

// start starts a new process; the channel gets the outcome: nil once it
// is ready, else why it failed (it has exited or was killed).
func (u *upgrader) start() <-chan error {
	select {
	case <-u.asks: // from an earlier new process, too late to count
	default:
	}
	done := make(chan error, 1)
	go func() { done <- u.Upgrade() }()
	return done
}

// Stop ends upgrades and closes the handoff pipe.
func (u *upgrader) Stop() {
	if u.stopWaiting != nil {
		u.stopWaiting()
	}
	u.Upgrader.Stop()
	close(u.stopped)
	u.handoff.Close()
}

// binary is the file a new process runs: the path this one was started
// as, as tableflip resolves it.
func binary() string {
	path, err := exec.LookPath(os.Args[0])
	if err != nil {
		return os.Args[0]
	}
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// requestUpgrade asks run for an upgrade, unless one runs or cannot run
// yet; it returns the upgrade's status.
func (s *server) requestUpgrade() (api.Upgrade, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil && s.last.State == api.UpgradeRunning {
		return api.Upgrade{}, fmt.Errorf("%w: an upgrade started at %s is still running", api.ErrUpgradeBusy, s.last.Started.Format(time.TimeOnly))
	}
	if !s.up.parentExited() {
		return api.Upgrade{}, fmt.Errorf("%w: the process this one replaced is still finishing its requests (up to %s); try again then", api.ErrUpgradeBusy, shutdownTimeout)
	}
	s.last = &api.Upgrade{State: api.UpgradeRunning, Started: time.Now().UTC(), PID: os.Getpid(), Binary: binary()}
	s.upgrades <- struct{}{} // room for one, and no other is running
	return *s.last, nil
}

// upgrade runs an upgrade (see the top of this file) on run's goroutine.
// It returns true once the new process is ready: this one is to finish
// its requests and exit. An error means the data directory could not be
// taken back from a new process that failed with it: this process has
// no store, and exits so that a supervisor starts a fresh one (the
// instances go on running, for it to adopt).
func (s *server) upgrade() (handedOver bool, err error) {
	s.log.Info("upgrade: starting a new process", "binary", binary())
	outcome := s.up.start()
	var pid int
	select {
	case err := <-outcome:
		if err == nil { // it was ready without asking: not a slipway of this kind
			err = errors.New("the new process never asked for the data directory")
		}
		s.upgradeFailed(fmt.Errorf("%w: the new binary %s: %v; this process (pid %d) serves on", ErrUpgrade, binary(), err, os.Getpid()))
		return false, nil
	case pid = <-s.up.asks:
	}
	s.log.Info("upgrade: the new process has the sockets; handing the data directory over", "new_pid", pid)
	s.release()
	if err := <-outcome; err != nil {
		s.log.Error("upgrade: the new process failed with the data directory; taking it back", "new_pid", pid, "err", err)
		if rerr := s.reopen(context.Background()); rerr != nil {
			return false, fmt.Errorf("%w: the new process (pid %d) failed (%v), and the data directory could not be taken back: %w", ErrUpgrade, pid, err, rerr)
		}
		s.upgradeFailed(fmt.Errorf("%w: the new process (pid %d) of %s failed once it had the data directory: %v; this process (pid %d) took it back and serves on", ErrUpgrade, pid, binary(), err, os.Getpid()))
		return false, nil
	}
	s.mu.Lock()
	s.last.State, s.last.Finished, s.last.NewPID = api.UpgradeSucceeded, time.Now().UTC(), pid
	s.mu.Unlock()
	s.log.Info("upgrade: the new process serves; this one finishes its requests in flight and exits", "new_pid", pid)
	sdNotify(s.log, fmt.Sprintf("MAINPID=%d", pid))
	return true, nil
}

func (s *server) upgradeFailed(err error) {
	s.log.Error(err.Error())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last.State, s.last.Finished, s.last.Error = api.UpgradeFailed, time.Now().UTC(), err.Error()
}

// waitLock takes the data directory's lock, waiting up to timeout for
// the process that holds it (an upgrade's old process) to let go.
func waitLock(ctx context.Context, dir string, timeout time.Duration) (func(), error) {
	deadline := time.Now().Add(timeout)
	for {
		unlock, err := LockDataDir(dir)
		if !errors.Is(err, ErrRunning) {
			return unlock, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s: %v after %s", ErrUpgrade, dir, err, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// sdNotify tells systemd about the daemon's state (sd_notify(3)): READY=1
// once it serves, MAINPID=N when an upgrade's new process takes over,
// STOPPING=1. Outside systemd (no NOTIFY_SOCKET) it does nothing.
func sdNotify(log *slog.Logger, state string) {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return
	}
	if socket[0] == '@' { // an abstract socket
		socket = "\x00" + socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err == nil {
		_, err = conn.Write([]byte(state))
		conn.Close()
	}
	if err != nil {
		log.Warn("cannot notify systemd", "state", state, "err", err)
	}
}
