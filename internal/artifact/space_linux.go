package artifact

import "golang.org/x/sys/unix"

// statSpace reports the space of the file system that holds path: Free is
// what an unprivileged writer may still use (ext4 keeps some blocks for
// root; the daemon may run as root, but its reserve should not count them).
func statSpace(path string) (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Space{}, err
	}
	unit := st.Frsize
	if unit == 0 {
		unit = st.Bsize
	}
	return Space{Free: int64(st.Bavail) * unit, Size: int64(st.Blocks) * unit}, nil
}
