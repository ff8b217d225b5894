package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
	cmd.AddCommand(newDeploymentsShowCmd(g))
	return cmd
}

func newDeploymentsShowCmd(g *globals) *cobra.Command {
	var app string
	var followIt bool
	cmd := &cobra.Command{
		Use:   "show -a NAME ID [-f]",
		Short: "Show one deployment and its steps; -f follows a running one to its end",
		Long: `Show one deployment of an app (its id is in 'slipway deployments'): what it
took live, who asked, how it ended and its steps. With -f, a running
deployment is followed until it ends, as 'slipway deploy' follows it, and
the command exits non-zero unless it succeeded.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.Atoi(strings.TrimPrefix(args[0], "#"))
			if err != nil || id < 1 {
				return fmt.Errorf("%q is not a deployment id; 'slipway deployments -a %s' lists them", args[0], app)
			}
			path := fmt.Sprintf("/api/v1/apps/%s/deployments/%d", url.PathEscape(app), id)
			var d api.Deployment
			if err := g.client().do(cmd.Context(), http.MethodGet, path, nil, &d); err != nil {
				return err
			}
			if followIt && g.output == "json" {
				return followEvents(cmd, g, d, 0)
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), d)
			}
			printDeployment(cmd.OutOrStdout(), g, d)
			switch {
			case followIt && d.State == api.StateRunning:
				return followEvents(cmd, g, d, len(d.Events))
			case followIt && d.State != api.StateSucceeded:
				return fmt.Errorf("deployment #%d %s: %s", d.ID, d.State, d.Reason)
			case d.State == api.StateRunning:
				fmt.Fprintf(cmd.OutOrStdout(), "\nIt is running; follow it with: %s\n", showCommand(d, true))
			}
			return nil
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().BoolVarP(&followIt, "follow", "f", false, "follow a running deployment until it ends; exit non-zero unless it succeeded")
	return cmd
}

// printDeployment shows d for people: what it is, how it ended, its steps.
func printDeployment(w io.Writer, g *globals, d api.Deployment) {
	const at = "2006-01-02 15:04:05 MST"
	artifact := "-"
	if d.Artifact.Name != "" {
		artifact = fmt.Sprintf("%s (%s, %d bytes)", d.Artifact.Name, shortDigest(d.Artifact.Digest), d.Artifact.Size)
	}
	fmt.Fprintf(w, "Deployment #%d of %s\n", d.ID, d.App)
	fmt.Fprintf(w, "Kind:      %s\nRelease:   %s\nArtifact:  %s\nState:     %s\n", orDash(d.Kind), releaseName(d.Release), artifact, d.State)
	if d.Reason != "" {
		fmt.Fprintf(w, "Reason:    %s\n", strings.ReplaceAll(d.Reason, "\n", "\n           "))
	}
	fmt.Fprintf(w, "Author:    %s\n", orDash(d.Author))
	if d.Deployer != "" { // an App Service client's name for itself
		fmt.Fprintf(w, "Deployer:  %s\n", d.Deployer)
	}
	fmt.Fprintf(w, "Message:   %s\nStarted:   %s\n", orDash(strings.ReplaceAll(d.Message, "\n", "\n           ")), d.Started.Local().Format(at))
	if !d.Finished.IsZero() {
		fmt.Fprintf(w, "Finished:  %s (took %s)\n", d.Finished.Local().Format(at), duration(d))
	}
	if len(d.Events) > 0 {
		fmt.Fprintln(w)
	}
	for _, e := range d.Events {
		printEvent(w, g, &e)
	}
}

// followEvents follows running deployment d through its events route,
// printing its events from the skip-th on, until it ends.
func followEvents(cmd *cobra.Command, g *globals, d api.Deployment, skip int) error {
	ctx, detach := context.WithCancelCause(cmd.Context())
	defer detach(nil)
	path := fmt.Sprintf("/api/v1/apps/%s/deployments/%d/events", url.PathEscape(d.App), d.ID)
	resp, err := g.client().send(ctx, http.MethodGet, path, nil, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := g.client().expect(resp, mediaNDJSON); err != nil {
		return err
	}
	return followStream(ctx, detach, cmd, g, resp.Body, &d, skip)
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
