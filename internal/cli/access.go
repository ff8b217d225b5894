package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/access"
	"github.com/slipway-dev/slipway/internal/api"
)

func newAccessCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Restrict who may reach an app, and its deploy endpoints, by client address",
		Long: `Access restrictions are ordered rules: the lowest priority number that
matches the client's address decides. With no rules everyone is allowed;
once there is an allow rule, a client no rule matches is denied. The app
scope guards the app's traffic; the deploy scope guards its deploy endpoints
on the API. Changes apply at once, without a restart. Behind a load balancer,
start the server with --trusted-proxies so the client's own address counts.`,
	}
	cmd.AddCommand(newAccessListCmd(g), newAccessAddCmd(g), newAccessRemoveCmd(g), newAccessHTTPSOnlyCmd(g))
	return cmd
}

func accessPath(app string) string { return "/api/v1/apps/" + url.PathEscape(app) + "/access" }

func newAccessListCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "list -a NAME",
		Short: "Show an app's access rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p api.Policy
			if err := g.client().do(cmd.Context(), http.MethodGet, accessPath(app), nil, &p); err != nil {
				return err
			}
			return printPolicy(cmd.OutOrStdout(), g, p)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

func printPolicy(w io.Writer, g *globals, p api.Policy) error {
	if g.output == "json" {
		return printJSON(w, p)
	}
	var rows [][]string
	for _, s := range []struct {
		name  string
		rules []api.Rule
		def   string
	}{{access.ScopeApp, p.App, p.AppDefault}, {access.ScopeDeploy, p.Deploy, p.DeployDefault}} {
		for _, r := range s.rules {
			rows = append(rows, []string{s.name, strconv.Itoa(r.Priority), r.Action, r.Network, orDash(r.Name)})
		}
		rows = append(rows, []string{s.name, "default", s.def, "any", "(when no rule matches)"})
	}
	if err := table(w, []string{"SCOPE", "PRIORITY", "ACTION", "NETWORK", "NAME"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nHTTPS only: %v\n", p.HTTPSOnly)
	if p.Warning != "" {
		fmt.Fprintf(w, "\nWarning: %s\n", p.Warning)
	}
	return nil
}

func newAccessAddCmd(g *globals) *cobra.Command {
	var app, allow, deny, scope, name string
	var priority int
	cmd := &cobra.Command{
		Use:   "add -a NAME --priority N (--allow CIDR | --deny CIDR) [--scope app|deploy]",
		Short: "Add a rule, or replace the rule of that priority",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.AddRuleRequest{Scope: scope, Priority: priority, Name: name}
			switch {
			case (allow == "") == (deny == ""):
				return errors.New("give exactly one of --allow CIDR or --deny CIDR")
			case allow != "":
				req.Action, req.Network = access.Allow, allow
			default:
				req.Action, req.Network = access.Deny, deny
			}
			body, _ := json.Marshal(req)
			var p api.Policy
			if err := g.client().do(cmd.Context(), http.MethodPost, accessPath(app)+"/rules", bytes.NewReader(body), &p); err != nil {
				return err
			}
			return printPolicy(cmd.OutOrStdout(), g, p)
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().IntVar(&priority, "priority", 0, fmt.Sprintf("the rule's place, %d to %d: lower numbers are matched first", access.MinPriority, access.MaxPriority))
	cmd.Flags().StringVar(&allow, "allow", "", "allow this `CIDR` network or address, like 10.0.0.0/8 or 2001:db8::/32")
	cmd.Flags().StringVar(&deny, "deny", "", "deny this `CIDR` network or address")
	cmd.Flags().StringVar(&scope, "scope", access.ScopeApp, "app (the app's traffic) or deploy (its deploy endpoints)")
	cmd.Flags().StringVar(&name, "name", "", "a note, like \"office\"")
	cmd.MarkFlagRequired("priority")
	return cmd
}

func newAccessRemoveCmd(g *globals) *cobra.Command {
	var app, scope string
	var priority int
	cmd := &cobra.Command{
		Use:   "remove -a NAME --priority N [--scope app|deploy]",
		Short: "Remove the rule of a priority",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p api.Policy
			path := fmt.Sprintf("%s/rules/%s/%d", accessPath(app), url.PathEscape(scope), priority)
			if err := g.client().do(cmd.Context(), http.MethodDelete, path, nil, &p); err != nil {
				return err
			}
			return printPolicy(cmd.OutOrStdout(), g, p)
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().IntVar(&priority, "priority", 0, "the priority of the rule to remove")
	cmd.Flags().StringVar(&scope, "scope", access.ScopeApp, "app or deploy")
	cmd.MarkFlagRequired("priority")
	return cmd
}

func newAccessHTTPSOnlyCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "https-only -a NAME on|off",
		Short: "Redirect the app's plain HTTP requests to HTTPS, or stop doing so",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			on, err := strconv.ParseBool(map[string]string{"on": "true", "off": "false"}[args[0]])
			if err != nil {
				return fmt.Errorf("%q: say on or off", args[0])
			}
			body, _ := json.Marshal(api.PolicyChange{HTTPSOnly: &on})
			var p api.Policy
			if err := g.client().do(cmd.Context(), http.MethodPatch, accessPath(app), bytes.NewReader(body), &p); err != nil {
				return err
			}
			return printPolicy(cmd.OutOrStdout(), g, p)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}
