package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

func newDeploymentsCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "deployments -a NAME",
		Short: "List an app's deployments, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var deps []api.Deployment
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/deployments", nil, &deps); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), deps)
			}
			rows := make([][]string, 0, len(deps))
			for i := len(deps) - 1; i >= 0; i-- {
				d := deps[i]
				rows = append(rows, []string{"#" + strconv.Itoa(d.ID), orDash(d.Kind), releaseName(d.Release), d.State, ago(d.Started), duration(d),
					orDash(d.Artifact.Name), orDash(d.Author), orDash(d.Deployer), orDash(firstLine(d.Reason, d.Message))})
			}
			return table(cmd.OutOrStdout(), []string{"ID", "KIND", "RELEASE", "STATE", "STARTED", "TOOK", "ARTIFACT", "AUTHOR", "DEPLOYER", "MESSAGE / REASON"}, rows)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

func duration(d api.Deployment) string {
	if d.Finished.IsZero() {
		return fmt.Sprintf("%s…", time.Since(d.Started).Round(time.Second))
	}
	return d.Finished.Sub(d.Started).Round(100 * time.Millisecond).String()
}

// firstLine returns the first line of the first non-empty string.
func firstLine(ss ...string) string {
	for _, s := range ss {
		if s == "" {
			continue
		}
		for i, c := range s {
			if c == '\n' {
				return s[:i]
			}
		}
		return s
	}
	return ""
}
