package daemon

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestLockDataDir: the lock is exclusive while held, the refusal names
// the holder's pid, and it is free again once released.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock(2) locks belong to the open file, so a second open in this
	// process conflicts as another process would.
	_, err = LockDataDir(dir)
	want := fmt.Sprintf("the daemon is running (pid %d?); stop it first", os.Getpid())
	if !errors.Is(err, ErrRunning) || err.Error() != want {
		t.Errorf("locking a locked directory: got %v, want %q", err, want)
	}
	unlock()
	unlock, err = LockDataDir(dir)
	if err != nil {
		t.Fatalf("locking a released directory: %v", err)
	}
	unlock()
}
