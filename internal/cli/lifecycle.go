package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/settings"
)

func newScaleCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	cmd := &cobra.Command{
		Use:   "scale -a NAME N",
		Short: fmt.Sprintf("Run N instances (1–%d): new ones are warmed up first, removed ones drained first", settings.MaxInstances),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > settings.MaxInstances {
				return fmt.Errorf("%w: instances must be between 1 and %d, not %q", settings.ErrInvalidSettings, settings.MaxInstances, args[0])
			}
			req := changeRequest{method: http.MethodPost, suffix: "/scale", body: jsonBody(api.ScaleRequest{Instances: n})}
			var answer json.RawMessage // a deployment, or NoChange
			return runChange(cmd, g, f, req, &answer, func(status int) error {
				w := cmd.OutOrStdout()
				switch status {
				case http.StatusNoContent:
					fmt.Fprintf(w, "%s will run %d instance(s) once deployed.\n", f.app, n)
					return nil
				case http.StatusOK:
					var nc api.NoChange
					json.Unmarshal(answer, &nc)
					if g.output == "json" {
						return printJSON(w, nc)
					}
					fmt.Fprintln(w, upperFirst(nc.Message)+".")
					return nil
				default:
					var d api.Deployment
					json.Unmarshal(answer, &d)
					return reportStarted(cmd, g, d)
				}
			})
		},
	}
	addChangeFlags(cmd, f)
	return cmd
}

func newRestartCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	cmd := &cobra.Command{
		Use:   "restart -a NAME",
		Short: "Start fresh instances of the live release, then swap to them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d api.Deployment
			req := changeRequest{method: http.MethodPost, suffix: "/restart", body: jsonBody(struct{}{})}
			return runChange(cmd, g, f, req, &d, func(int) error { return reportStarted(cmd, g, d) })
		},
	}
	addChangeFlags(cmd, f)
	return cmd
}

func newRollbackCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var to string
	cmd := &cobra.Command{
		Use:   "rollback -a NAME [--to vN]",
		Short: "Take an earlier release live again, as a new release",
		Long: `Take an earlier release live again — its artifact and its settings, not its
instance count — through warm-up and swap, recorded as a new release. Without
--to, the release that was live before the current one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.RollbackRequest{}
			if to != "" {
				n, err := strconv.Atoi(strings.TrimPrefix(to, "v"))
				if err != nil || n < 1 {
					return fmt.Errorf("--to %q: name a release like v3", to)
				}
				req.To = n
			}
			var d api.Deployment
			return runChange(cmd, g, f, changeRequest{method: http.MethodPost, suffix: "/rollback", body: jsonBody(req)}, &d,
				func(int) error { return reportStarted(cmd, g, d) })
		},
	}
	addChangeFlags(cmd, f)
	cmd.Flags().StringVar(&to, "to", "", "the release to go back to, like v3")
	return cmd
}

func newReleasesCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "releases -a NAME",
		Short: "List an app's releases, newest first, with what each changed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rels []api.Release
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/releases", nil, &rels); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), rels)
			}
			var a api.App
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app), nil, &a); err != nil {
				return err
			}
			rows := make([][]string, 0, len(rels))
			for i := len(rels) - 1; i >= 0; i-- {
				r := rels[i]
				name := r.Version()
				if r.Number == a.CurrentRelease {
					name += " (live)"
				}
				rows = append(rows, []string{name, r.Artifact.Name, shortDigest(r.Artifact.Digest), releaseStack(r), ago(r.Created), orDash(r.Author),
					orDash(r.Message), orDash(strings.Join(r.Changes, "; "))})
			}
			return table(cmd.OutOrStdout(), []string{"RELEASE", "ARTIFACT", "DIGEST", "STACK", "CREATED", "AUTHOR", "MESSAGE", "CHANGES"}, rows)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

// releaseStack is a release's stack and the Java version it asks for:
// "tomcat, Java 17", or "java" on the node's default java.
func releaseStack(r api.Release) string {
	if v := r.Settings.JavaVersion; v != "" {
		return r.Stack + ", Java " + v
	}
	return r.Stack
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
