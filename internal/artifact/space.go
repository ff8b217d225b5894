package artifact

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// The free space kept on the data directory's file system. etcd, under
// the store, exits the daemon when it cannot write (and every app's
// traffic goes with it), so what Slipway writes in bulk — uploads and
// unpacked releases — stops short of a reserve that is left to the store
// and the logs. Its quota (store.QuotaBytes) keeps the database itself
// bounded.
const (
	// DefaultMinFreeSpace is the reserve, unless 5% of the file system
	// is less (defaultMinFreePercent).
	DefaultMinFreeSpace   = 512 << 20
	defaultMinFreePercent = 5
	// spaceCheckEvery is how many bytes an upload or an unpacking writes
	// between two looks at the free space, so it may end up that much
	// into the reserve.
	spaceCheckEvery = 1 << 20
)

// ErrNoSpace refuses what would fill the disk; its message says how much
// is free, how much is kept, and what to do.
var ErrNoSpace = errors.New("not enough free disk space")

// Space is the free space of a file system and its size, in bytes.
type Space struct{ Free, Size int64 }

// reserve is the free space to keep on a file system of size bytes.
func (s *Store) reserve(size int64) int64 {
	if s.opts.MinFreeSpace > 0 {
		return s.opts.MinFreeSpace
	}
	return min(DefaultMinFreeSpace, size*defaultMinFreePercent/100)
}

// Space reports the space of the file system that holds the artifacts
// now, and the free space the store keeps on it.
func (s *Store) Space() (now Space, keep int64, err error) {
	now, err = statSpace(s.opts.Dir)
	return now, s.reserve(now.Size), err
}

// checkSpace refuses with ErrNoSpace writing need more bytes in dir when
// that would leave less than the reserve free; what names the writing.
func (s *Store) checkSpace(dir string, need int64, what string) error {
	sp, err := statSpace(dir)
	if err != nil {
		return fmt.Errorf("checking the free space: %w", err)
	}
	if sp.Free-need >= s.reserve(sp.Size) {
		return nil
	}
	return s.noSpace(dir, sp, need, what)
}

// noSpace is the error that tells the operator the disk is full.
func (s *Store) noSpace(dir string, sp Space, need int64, what string) error {
	if need > 0 {
		what += " (" + formatBytes(need) + ")"
	}
	return fmt.Errorf("%w for %s: the file system of %s has %s free, and Slipway keeps %s free there (--min-free-space) so that its store and logs never run out; "+
		"free some space on it (a lower --keep-releases keeps fewer old releases) or move the data directory to a larger disk",
		ErrNoSpace, what, dir, formatBytes(sp.Free), formatBytes(s.reserve(sp.Size)))
}

// spaceWriter writes to w, looking at the free space of dir every
// spaceCheckEvery bytes; it fails with ErrNoSpace once the free space is
// under the reserve, or when a write finds the disk full.
type spaceWriter struct {
	w         io.Writer
	s         *Store
	dir, what string
	unchecked int64
}

func (sw *spaceWriter) Write(p []byte) (int, error) {
	if sw.unchecked >= spaceCheckEvery {
		sw.unchecked = 0
		if err := sw.s.checkSpace(sw.dir, 0, sw.what); err != nil {
			return 0, err
		}
	}
	n, err := sw.w.Write(p)
	sw.unchecked += int64(n)
	if errors.Is(err, syscall.ENOSPC) {
		sp, _ := statSpace(sw.dir)
		return n, fmt.Errorf("%w (%v)", sw.s.noSpace(sw.dir, sp, 0, sw.what), err)
	}
	return n, err
}

// formatBytes renders n in the largest binary unit that keeps it at least
// 1, like "96 MiB".
func formatBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/1024, 0
	for ; f >= 1024 && i < len(units)-1; i++ {
		f /= 1024
	}
	if f < 10 {
		return fmt.Sprintf("%.1f %ciB", f, units[i])
	}
	return fmt.Sprintf("%.0f %ciB", f, units[i])
}
