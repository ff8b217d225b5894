package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/settings"
)

func newDomainsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "Serve an app at its own host names, besides NAME.<base-domain>",
		Long: `An app is served at NAME.<base-domain> and at its custom domains: names like
shop.example.com, or wildcards like *.shop.example.com for the names one
label under shop.example.com (an exact name wins over a wildcard). A change
takes effect at once, without a deployment. A name belongs to one app only.
Point the name's DNS at the Slipway machine (or its load balancer).`,
	}
	cmd.AddCommand(newDomainsAddCmd(g), newDomainsListCmd(g), newDomainsRemoveCmd(g))
	return cmd
}

func domainsPath(app string) string {
	return "/api/v1/apps/" + url.PathEscape(app) + "/domains"
}

func newDomainsAddCmd(g *globals) *cobra.Command {
	var app string
	var acme bool
	cmd := &cobra.Command{
		Use:   "add -a NAME DOMAIN [--acme]",
		Short: "Serve an app at a custom domain, at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := settings.ParseDomain(args[0]); err != nil {
				return err
			}
			body, _ := json.Marshal(api.AddDomainRequest{Name: args[0], ACME: acme})
			var d api.Domain
			if err := g.client().do(cmd.Context(), http.MethodPost, domainsPath(app), bytes.NewReader(body), &d); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), d)
			}
			printDomainAdded(cmd.OutOrStdout(), d)
			return nil
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().BoolVar(&acme, "acme", false, "get the domain's certificate from the daemon's ACME CA on the first HTTPS request (not for a wildcard)")
	return cmd
}

func printDomainAdded(w io.Writer, d api.Domain) {
	fmt.Fprintf(w, "App %s is served at %s now.\n", d.App, d.Name)
	if d.ACME {
		fmt.Fprintf(w, "Its certificate comes from the ACME CA on the first HTTPS request: point the name's DNS here first.\n")
	}
}

func newDomainsListCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "list -a NAME",
		Short: "List an app's custom domains",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ds []api.Domain
			if err := g.client().do(cmd.Context(), http.MethodGet, domainsPath(app), nil, &ds); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), ds)
			}
			return printDomains(cmd.OutOrStdout(), app, ds)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

func printDomains(w io.Writer, app string, ds []api.Domain) error {
	if len(ds) == 0 {
		_, err := fmt.Fprintf(w, "App %s has no custom domain; add one with 'slipway domains add -a %s DOMAIN'.\n", app, app)
		return err
	}
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		cert := "-"
		if d.ACME {
			cert = "acme"
		}
		rows = append(rows, []string{d.Name, cert, ago(d.Created)})
	}
	return table(w, []string{"DOMAIN", "CERTIFICATE", "ADDED"}, rows)
}

func newDomainsRemoveCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "remove -a NAME DOMAIN",
		Short: "Stop serving an app at a custom domain, at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := settings.ParseDomain(args[0])
			if err != nil {
				return err
			}
			if err := g.client().do(cmd.Context(), http.MethodDelete, domainsPath(app)+"/"+url.PathEscape(name), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "App %s is no longer served at %s.\n", app, name)
			return nil
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}
