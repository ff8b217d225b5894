package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

func newCredentialsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Manage an app's deploy credentials: tokens that may deploy that one app",
		Long: `A deploy credential may deploy one app, and read its status and logs, and
nothing else. It works as a bearer token, or as HTTP basic auth with the
user $APPNAME and the token as password, as App Service pipelines send.`,
	}
	cmd.AddCommand(newCredentialsCreateCmd(g), newCredentialsListCmd(g), newCredentialsRevokeCmd(g))
	return cmd
}

func credentialsPath(app string) string {
	return "/api/v1/apps/" + url.PathEscape(app) + "/credentials"
}

func newCredentialsCreateCmd(g *globals) *cobra.Command {
	var app, name, author string
	cmd := &cobra.Command{
		Use:   "create -a NAME [--name NOTE]",
		Short: "Make a deploy credential; its token is shown this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if author == "" {
				author = localUser()
			}
			body, _ := json.Marshal(api.CreateCredentialRequest{Name: name, Author: author})
			var c api.NewCredential
			if err := g.client().do(cmd.Context(), http.MethodPost, credentialsPath(app), bytes.NewReader(body), &c); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), c)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Credential %s for app %s. Its token, shown this once:\n\n    %s\n\nAs basic auth: user $%s, password the token.\n", c.ID, c.App, c.Token, c.App)
			return nil
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().StringVar(&name, "name", "", "a note, like the pipeline that will use it")
	cmd.Flags().StringVar(&author, "author", "", "who makes it (default: your user name)")
	return cmd
}

func newCredentialsListCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "list -a NAME",
		Short: "List an app's deploy credentials (never their tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cs []api.Credential
			if err := g.client().do(cmd.Context(), http.MethodGet, credentialsPath(app), nil, &cs); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), cs)
			}
			rows := make([][]string, 0, len(cs))
			for _, c := range cs {
				rows = append(rows, []string{c.ID, orDash(c.Name), orDash(c.Author), ago(c.Created)})
			}
			return table(cmd.OutOrStdout(), []string{"ID", "NAME", "AUTHOR", "CREATED"}, rows)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

func newCredentialsRevokeCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "revoke -a NAME ID",
		Short: "Revoke a deploy credential; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().do(cmd.Context(), http.MethodDelete, credentialsPath(app)+"/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked credential %s of app %s.\n", args[0], app)
			return nil
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}
