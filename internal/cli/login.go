package cli

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func newLoginCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login --url URL",
		Short: "Keep a token for a daemon in your config directory",
		Long: `Log in to a Slipway daemon: reads a token (the admin token, or an app's
deploy credential) from --token or standard input, checks it with the daemon,
and keeps it in your config directory (mode 0600) for that URL. Later
commands use that URL and token unless --url/SLIPWAY_URL or
--token/SLIPWAY_TOKEN say otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("token") {
				fmt.Fprint(cmd.ErrOrStderr(), "Token: ")
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) == "" {
					return fmt.Errorf("no token given: paste it, or pass --token (%v)", err)
				}
				g.token, g.tokenFrom = strings.TrimSpace(line), "standard input"
			}
			var who struct {
				App   string `json:"app"`
				Admin bool   `json:"admin"`
			}
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/whoami", nil, &who); err != nil {
				return err
			}
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			cfg.URL = g.url
			cfg.Servers[g.url] = server{Token: g.token}
			if err := saveConfig(cfg); err != nil {
				return err
			}
			role := "admin"
			if !who.Admin {
				role = "a deploy credential of app " + who.App
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s.\n", g.url, role)
			return nil
		},
	}
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout [--url URL]",
		Short: "Forget the token 'slipway login' kept for a daemon",
		Long: `Remove the token 'slipway login' kept for the daemon at --url (default: the
URL of the last login) from your config directory. Later commands no longer
send it; a token given by --token or SLIPWAY_TOKEN is not affected.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{offline: "yes"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			path, _ := configPath()
			u := g.url
			if !cmd.Flags().Changed("url") && cfg.URL != "" {
				u = cfg.URL
			}
			u = strings.TrimRight(u, "/")
			w := cmd.OutOrStdout()
			if _, ok := cfg.Servers[u]; !ok {
				fmt.Fprintf(w, "There is no login for %s in %s; nothing to forget.\n", u, path)
				return nil
			}
			delete(cfg.Servers, u)
			if cfg.URL == u {
				cfg.URL = ""
			}
			if err := saveConfig(cfg); err != nil {
				return err
			}
			fmt.Fprintf(w, "Logged out of %s: its token is no longer kept in %s.\n", u, path)
			return nil
		},
	}
	return cmd
}
