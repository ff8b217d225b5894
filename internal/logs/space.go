package logs

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLowSpace is why an app's log file takes no line while the disk has
// less free space than Options.MinFree.
var ErrLowSpace = errors.New("the disk has too little free space for the app logs")

// How often the logs look at the free space: after this many bytes
// written by all apps together, or this long, whichever comes first. So
// the files may go that far past MinFree.
const (
	spaceCheckBytes    = 64 << 10
	spaceCheckInterval = time.Second
)

// spaceGuard keeps the app log files from taking the last MinFree bytes
// of their disk, which the store needs to go on.
type spaceGuard struct {
	dir string

	mu      sync.Mutex // guards the fields below
	minFree int64
	written int64 // bytes offered since the last look
	checked time.Time
	low     error // why the last look found too little, nil if enough
}

// allow says whether n more bytes may be written, looking at the free
// space now and then.
func (g *spaceGuard) allow(n int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.minFree <= 0 {
		return nil
	}
	g.written += int64(n)
	if g.written < spaceCheckBytes && time.Since(g.checked) < spaceCheckInterval {
		return g.low
	}
	g.written, g.checked = 0, time.Now()
	var st unix.Statfs_t
	if err := unix.Statfs(g.dir, &st); err != nil && unix.Statfs(filepath.Dir(g.dir), &st) != nil {
		g.low = nil // not knowing is no reason to stop writing
		return nil
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	g.low = nil
	if free < g.minFree {
		g.low = fmt.Errorf("%w: %s has %d MiB free, and the logs leave %d MiB to the store (half of --min-free-space); free some space on that disk",
			ErrLowSpace, g.dir, free>>20, g.minFree>>20)
	}
	return g.low
}
