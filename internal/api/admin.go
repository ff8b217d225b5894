package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/backup"
)

// Operator is the daemon itself, as the API sees it.
type Operator interface {
	// Version says which build runs, in which process, and how its last
	// upgrade went.
	Version() Version
	// Upgrade starts an upgrade to the binary at the daemon's path and
	// returns at once (the API that answers stops during it); it fails,
	// wrapping ErrUpgradeBusy, while one runs.
	Upgrade() (Upgrade, error)
	// Backup prepares a consistent backup of the running daemon, to be
	// written by the caller and closed.
	Backup(ctx context.Context) (*backup.Archive, error)
}

// ErrUpgradeBusy refuses an upgrade while another one runs or has not
// quite finished.
var ErrUpgradeBusy = errors.New("an upgrade cannot start now")

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.opts.Operator.Version())
	return nil
}

// upgrade starts an upgrade: 202, and the outcome shows in GET
// /api/v1/version (the pid changes, or the upgrade says why it failed).
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) error {
	u, err := s.opts.Operator.Upgrade()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, u)
	return nil
}

// backup streams a backup archive (tar): the store's snapshot, the admin
// token and the artifacts the releases need. Its length is known before
// it is sent, so a client can tell an archive cut short.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) error {
	a, err := s.opts.Operator.Backup(r.Context())
	if err != nil {
		return fmt.Errorf("making the backup: %w", err)
	}
	defer a.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Length", strconv.FormatInt(a.Size(), 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="slipway-backup-%s.tar"`, time.Now().UTC().Format("20060102-150405")))
	w.WriteHeader(http.StatusOK)
	if _, err := a.WriteTo(w); err != nil {
		s.logger.Warn("backup: the archive was cut off", "err", err)
	}
	return nil
}
