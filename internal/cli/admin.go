package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

func newAdminCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the daemon's admin token",
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
	return cmd
}
