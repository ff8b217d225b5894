package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/version"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show this slipway's version, and the daemon's",
		Long: `Show the version, commit and Go version of this slipway binary, then
those of the daemon at --url with its pid (any token will do). It fails if
the daemon cannot be reached, after printing the client's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := version.Get()
			var server api.Version
			err := g.client().do(cmd.Context(), "GET", "/api/v1/version", nil, &server)
			if g.output == "json" {
				out := struct {
					Client version.Info `json:"client"`
					Server *api.Version `json:"server,omitempty"`
				}{Client: client}
				if err == nil {
					out.Server = &server
				}
				if perr := printJSON(cmd.OutOrStdout(), out); perr != nil {
					return perr
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "client: slipway %s\n", client)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "server: slipway %s, pid %d, up since %s\n", version.Info{Version: server.Version, Commit: server.Commit, GoVersion: server.GoVersion},
				server.PID, server.Started.Local().Format("2006-01-02 15:04:05 MST"))
			if u := server.Upgrade; u != nil && u.State == api.UpgradeFailed {
				fmt.Fprintf(cmd.OutOrStdout(), "last upgrade failed at %s: %s\n", u.Finished.Local().Format("15:04:05"), u.Error)
			}
			return nil
		},
	}
}
