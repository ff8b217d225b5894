package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/store"
)

// AdminTokenFile is where the daemon keeps the admin token for the
// operator on its machine: admin.token in the data directory, mode 0600.
func AdminTokenFile(dataDir string) string { return filepath.Join(dataDir, "admin.token") }

// adminToken makes the admin token on the first start, prints it once,
// and keeps it in file (admin.token in the data directory, mode 0600) for
// the operator on this machine; the store keeps only its hash.
func adminToken(ctx context.Context, st *store.Store, log *slog.Logger, path string) error {
	token, err := api.EnsureAdminToken(ctx, st, path)
	if token == "" {
		return err
	}
	// Made: show it whatever else failed, or nobody would ever have it.
	fmt.Fprintf(os.Stderr, "\nThe admin token, shown this once (also in %s, mode 0600):\n\n    %s\n\nOn another machine: slipway login --url URL, then paste it.\n\n", path, token)
	if err != nil {
		log.Warn("the admin token is not in its file; keep the one printed above", "file", path, "err", err)
	}
	return nil
}

// ResetAdminToken replaces the admin token of the stopped daemon whose
// data directory is dataDir, for an operator who lost admin.token and so
// cannot call the API to rotate it. It opens the store directly, under
// the data directory's lock: it fails, wrapping ErrRunning, while the
// daemon runs. The old token is refused from then on; the new one is
// returned, to be shown once, with the file it was written to (when only
// writing the file failed, the token comes with the error).
func ResetAdminToken(ctx context.Context, dataDir string) (token, file string, err error) {
	if dataDir == "" {
		return "", "", ErrNoDataDir
	}
	if !store.Exists(dataDir) {
		return "", "", fmt.Errorf("%s holds no slipway store; is the data directory right (--data-dir, SLIPWAY_DATA_DIR)?", dataDir)
	}
	if err := sameOwner(dataDir); err != nil {
		return "", "", err
	}
	unlock, err := LockDataDir(dataDir)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	st, err := store.Open(store.Options{Dir: dataDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", "", err
	}
	defer st.Close()
	file = AdminTokenFile(dataDir)
	token, err = api.ReplaceAdminToken(ctx, st, file)
	return token, file, err
}

// sameOwner refuses a data directory that another user owns: etcd would
// write files the daemon's user cannot read (as root), or could not open
// them at all.
func sameOwner(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("%s belongs to user id %d: run this as that user, the one the daemon runs as", dir, st.Uid)
}
