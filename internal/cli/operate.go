package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/backup"
	"github.com/slipway-dev/slipway/internal/version"
)

// upgradeWait bounds how long 'admin upgrade' waits for the outcome: the
// daemon's own bound on a new process's start (2 min) and some.
const upgradeWait = 3 * time.Minute

func newAdminUpgradeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade the daemon to the slipway binary now at its path, refusing no connection",
		Long: `Upgrade the daemon, as SIGHUP does: a new process of the binary now at the
path the daemon was started from (put the new one there first) takes over
the listening sockets, the data directory and the running instances, and
the old process exits once the new one serves. No connection is refused and
no instance restarts. Deployments that have not switched traffic yet are
cancelled. If the new binary fails, the old process serves on, and this
says why. It waits for the outcome, up to 3 minutes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := g.client()
			var started api.Upgrade
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/admin/upgrade", nil, &started); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Upgrading the daemon (pid %d) to %s …\n", started.PID, started.Binary)
			v, err := waitUpgrade(cmd.Context(), c, started)
			if err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Upgraded: pid %d now serves slipway %s\n", v.PID, version.Info{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion})
			return nil
		},
	}
}

// waitUpgrade polls the daemon's version until another process answers
// (the upgrade succeeded) or the one that started it says it failed.
// While the API changes hands, requests wait in the socket's queue.
func waitUpgrade(ctx context.Context, c *client, started api.Upgrade) (api.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, upgradeWait)
	defer cancel()
	for {
		var v api.Version
		err := c.do(ctx, http.MethodGet, "/api/v1/version", nil, &v)
		switch {
		case err == nil && v.PID != started.PID:
			return v, nil
		case err == nil && v.Upgrade != nil && v.Upgrade.Started.Equal(started.Started) && v.Upgrade.State == api.UpgradeFailed:
			return v, errors.New(v.Upgrade.Error)
		case ctx.Err() != nil:
			return v, fmt.Errorf("no outcome of the upgrade after %s; see the daemon's log", upgradeWait)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func newAdminBackupCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Write a backup of the running daemon to FILE",
		Long: `Write one archive (tar) with a snapshot of the daemon's store and the
artifacts its releases need, consistent while the daemon runs and deploys.
It holds the admin token and the apps' settings, secrets included: keep it
as safe as the data directory. The archive is checked as it arrives and
written under FILE only once whole (mode 0600). Restore it with
'slipway server --restore FILE' on an empty data directory.

Not in it: the apps' storage directories (SLIPWAY_STORAGE) and the logs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := g.client().send(cmd.Context(), http.MethodGet, "/api/v1/admin/backup", nil, -1)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var m backup.Manifest
			err = atomicfile.WriteFrom(out, 0o600, func(w io.Writer) error {
				var verr error
				m, verr = backup.Verify(io.TeeReader(resp.Body, w))
				return verr
			})
			if err != nil {
				return fmt.Errorf("the backup was not written: %w", err)
			}
			abs, _ := filepath.Abs(out)
			fi, _ := os.Stat(out)
			fmt.Fprintf(cmd.OutOrStdout(), "Backup of %d app(s), %d release(s) and %d artifact(s) written to %s (%d bytes)\n",
				m.Apps, m.Releases, len(m.Artifacts), abs, fi.Size())
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the `FILE` to write the backup to")
	cmd.MarkFlagRequired("output")
	return cmd
}
