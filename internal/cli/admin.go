package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/daemon"
)

func newAdminCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operate the daemon: its admin token, upgrades and backups",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate-token",
		Short: "Replace the admin token; the old one stops working at once",
		Long: `Replace the admin token. The new one is shown this once, written to
admin.token in the daemon's data directory, and kept by your login for this
URL if you have one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t api.AdminToken
			if err := g.client().do(cmd.Context(), http.MethodPost, "/api/v1/admin/token", nil, &t); err != nil {
				return err
			}
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Servers[g.url]; ok {
				cfg.Servers[g.url] = server{Token: t.Token}
				if err := saveConfig(cfg); err != nil {
					return fmt.Errorf("the admin token was replaced, but your login was not updated (%v); the new token: %s", err, t.Token)
				}
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), t)
			}
			where := "also in " + t.File + " on the daemon's machine"
			if t.File == "" {
				where = "the daemon could not write it to admin.token: keep it now"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "The new admin token, shown this once (%s):\n\n    %s\n", where, t.Token)
			return nil
		},
	})
	cmd.AddCommand(newAdminResetTokenCmd(g), newAdminUpgradeCmd(g), newAdminBackupCmd(g), newAdminJoinTokenCmd(g))
	return cmd
}

func newAdminResetTokenCmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "reset-token --data-dir DIR",
		Short: "Replace a lost admin token from the data directory, with the daemon stopped",
		Long: `Replace the admin token without the API, when the old one is lost: on
the daemon's machine, as the user it runs as, with the daemon stopped (it
refuses while the daemon runs; use rotate-token then). It opens the store
in the data directory, replaces the admin token's hash, so the old token is
refused from now on, writes the new one to admin.token (mode 0600) and shows
it this once. A 'slipway login' that kept the old token must be done again.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{offline: "yes"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, file, err := daemon.ResetAdminToken(cmd.Context(), dataDir)
			if token == "" {
				return err
			}
			t := api.AdminToken{Token: token, File: file}
			where := "also in " + file
			if err != nil {
				t.File, where = "", fmt.Sprintf("it is not in admin.token: %v; keep it now", err)
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "The new admin token, shown this once (%s):\n\n    %s\n\nThe old one is refused from now on; start the daemon again.\n", where, token)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", daemon.DefaultDataDir(), "the stopped daemon's data directory")
	return cmd
}
