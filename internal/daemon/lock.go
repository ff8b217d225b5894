package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrRunning says that a daemon holds the data directory's lock.
var ErrRunning = errors.New("the daemon is running")

// lockFile is the file in the data directory whose lock the daemon holds
// while it runs. It holds the pid of the daemon that took it last.
const lockFile = "slipway.lock"

// LockDataDir takes the data directory's exclusive lock, as the daemon
// does for as long as it runs, so that no two daemons (nor a daemon and
// `slipway admin reset-token`) share a store. The lock is an flock(2) on
// slipway.lock, released by the kernel when its holder exits, whatever
// the way; the pid written in the file is only a hint for the message.
// When the lock is held, the error wraps ErrRunning and names that pid.
func LockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s); stop it first", ErrRunning, holder(path))
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// Best effort: the lock, not the pid, keeps the directory ours.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// holder says which process the lock file names: "pid 1234?", with a
// question mark because the file may be older than the lock's holder.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
		return fmt.Sprintf("pid %d?", pid)
	}
	return "pid unknown"
}
