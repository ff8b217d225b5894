package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/scm"
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
	var profile bool
	cmd := &cobra.Command{
		Use:   "create -a NAME [--name NOTE] [--publish-profile [FILE]]",
		Short: "Make a deploy credential; its token is shown this once",
		Long: `Make a deploy credential; its token is shown this once.

With --publish-profile, write instead a publish profile (.PublishSettings)
that holds it, for App Service pipelines, to FILE (mode 0600) or to standard
output: the GitHub Action azure/webapps-deploy takes it as its
publish-profile secret. Its publishUrl is the app's SCM site on the API, as
this command reaches the API (or as the server's --public-url says); the
GitHub Action needs the API served over HTTPS.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || len(args) == 1 && !profile {
				return errors.New("only a publish profile goes to a file: slipway credentials create -a NAME --publish-profile FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if author == "" {
				author = localUser()
			}
			body, _ := json.Marshal(api.CreateCredentialRequest{Name: name, Author: author})
			var c api.NewCredential
			if err := g.client().do(cmd.Context(), http.MethodPost, credentialsPath(app), bytes.NewReader(body), &c); err != nil {
				return err
			}
			switch {
			case profile:
				return writeProfile(cmd, c, strings.Join(args, ""))
			case g.output == "json":
				return printJSON(cmd.OutOrStdout(), c)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Credential %s for app %s. Its token, shown this once:\n\n    %s\n\nAs basic auth: user $%s, password the token.\n", c.ID, c.App, c.Token, c.App)
			if c.SCMURL != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "App Service deploy endpoints (the SCM site): %s\n", c.SCMURL)
			}
			return nil
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().StringVar(&name, "name", "", "a note, like the pipeline that will use it")
	cmd.Flags().StringVar(&author, "author", "", "who makes it (default: your user name)")
	cmd.Flags().BoolVar(&profile, "publish-profile", false, "write a publish profile holding the credential, for App Service pipelines, to FILE or standard output")
	return cmd
}

// writeProfile writes the publish profile of the new credential c to
// file, readable by its owner only (it holds the token), or to standard
// output.
func writeProfile(cmd *cobra.Command, c api.NewCredential, file string) error {
	if c.SCMURL == "" {
		return fmt.Errorf("credential %s was made, but this daemon serves no App Service deploy endpoints, so there is no publish profile; revoke it with 'slipway credentials revoke -a %s %s'", c.ID, c.App, c.ID)
	}
	xml, err := scm.PublishProfile(scm.Profile{App: c.App, SiteURL: c.SCMURL, Password: c.Token, AppURL: c.AppURL})
	if err != nil {
		return err
	}
	if strings.HasPrefix(c.SCMURL, "http://") {
		fmt.Fprintf(cmd.ErrOrStderr(), "Warning: the API is reached over plain HTTP (%s), and the GitHub Action only speaks HTTPS: serve the API with --api-tls-cert, or behind a TLS proxy named by the server's --public-url.\n", c.SCMURL)
	}
	if file == "" {
		_, err := cmd.OutOrStdout().Write(xml)
		return err
	}
	if err := atomicfile.WriteFile(file, xml, 0o600); err != nil {
		return fmt.Errorf("credential %s was made, but writing its publish profile failed (revoke it with 'slipway credentials revoke -a %s %s'): %w", c.ID, c.App, c.ID, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Credential %s for app %s: publish profile written to %s (it holds the token; keep it secret).\n", c.ID, c.App, file)
	return nil
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
