package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/settings"
)

func newAppsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "apps", Short: "Create, list, show and delete apps"}
	cmd.AddCommand(newAppsCreateCmd(g), newAppsListCmd(g), newAppsShowCmd(g), newAppsDeleteCmd(g))
	return cmd
}

func newAppsCreateCmd(g *globals) *cobra.Command {
	var s settings.Settings
	var env []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an app; it is served at NAME.<base-domain>",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := settings.ValidateAppName(args[0]); err != nil {
				return err
			}
			var err error
			if s.Env, err = settings.ParseEnvPairs(env); err != nil {
				return err
			}
			if err := s.Validate(); err != nil {
				return err
			}
			body, _ := json.Marshal(api.CreateAppRequest{Name: args[0], Settings: s})
			var a api.App
			if err := g.client().do(cmd.Context(), http.MethodPost, "/api/v1/apps", bytes.NewReader(body), &a); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), a)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created app %s, served at %s\nDeploy it with: slipway deploy -a %s app.jar\n", a.Name, strings.Join(a.Hosts, ", "), a.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&env, "env", "e", nil, "an environment variable `KEY=VALUE` (repeatable)")
	f.StringVar(&s.Command, "command", "", "the startup command (default: the stack's, e.g. java $JAVA_OPTS -jar app.jar --server.port=$PORT on java)")
	addOptionFlags(f, &s)
	return cmd
}

func newAppsListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var apps []api.App
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps", nil, &apps); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), apps)
			}
			rows := make([][]string, 0, len(apps))
			for _, a := range apps {
				rows = append(rows, []string{a.Name, releaseName(a.CurrentRelease), strconv.Itoa(len(a.Instances)), strings.Join(a.Hosts, ","), deploying(a.Deploying)})
			}
			return table(cmd.OutOrStdout(), []string{"NAME", "RELEASE", "INSTANCES", "HOSTS", "DEPLOYING"}, rows)
		},
	}
}

func releaseName(n int) string {
	if n == 0 {
		return "-"
	}
	return "v" + strconv.Itoa(n)
}

func deploying(id int) string {
	if id == 0 {
		return "-"
	}
	return "#" + strconv.Itoa(id)
}

func newAppsShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show an app, its settings and its instances",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a api.App
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps/"+args[0], nil, &a); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), a)
			}
			w := cmd.OutOrStdout()
			s := a.Settings.WithDefaults()
			fmt.Fprintf(w, "Name:        %s\nHosts:       %s\nRelease:     %s\nDeploying:   %s\nCreated:     %s\n",
				a.Name, strings.Join(a.Hosts, ", "), releaseName(a.CurrentRelease), deploying(a.Deploying), a.Created.Format("2006-01-02 15:04:05 MST"))
			fmt.Fprintf(w, "URLs:        %s\n", orDash(strings.Join(a.URLs, "\n             ")))
			printRuntime(w, a.Runtime, a.Settings)
			fmt.Fprintf(w, "Instances:   %d wanted\nCommand:     %s\nWarmup:      GET %s until %s, at most %ds\nDrain:       %ds, then SIGTERM and %ds before SIGKILL\n",
				s.Instances, orDash(s.Command), s.WarmupPath, s.WarmupStatus, s.StartTimeLimit, s.DrainTimeout, s.StopGrace)
			if len(a.Instances) == 0 {
				fmt.Fprintln(w, "\nNo instance is running.")
				return nil
			}
			fmt.Fprintln(w)
			rows := make([][]string, 0, len(a.Instances))
			for _, i := range a.Instances {
				rows = append(rows, []string{i.ID, releaseName(i.Release), strconv.Itoa(i.PID), strconv.Itoa(i.Port), strconv.FormatInt(i.InFlight, 10)})
			}
			return table(w, []string{"INSTANCE", "RELEASE", "PID", "PORT", "IN FLIGHT"}, rows)
		},
	}
}

// printRuntime writes the Stack and Java lines of apps show and status:
// how the live release runs on the node that answers, or before the first
// release, what the settings ask for.
func printRuntime(w io.Writer, r *api.Runtime, s settings.Settings) {
	if r == nil {
		stack, java := s.Stack, s.JavaVersion
		if stack == "" {
			stack = "from the artifact"
		}
		if java == "" {
			java = "the node's default"
		}
		fmt.Fprintf(w, "Stack:       %s\nJava:        %s\n", stack, java)
		return
	}
	stack := r.Stack
	if r.Tomcat != "" {
		stack += " (Tomcat " + r.Tomcat + ")"
	}
	java := r.JavaVersion
	if java == "" {
		java = "the node's default"
	}
	if r.Java != "" {
		java += " (JDK " + r.Java + ", " + r.JavaHome + ")"
	}
	fmt.Fprintf(w, "Stack:       %s\nJava:        %s\n", stack, java)
	if r.Problem != "" {
		fmt.Fprintf(w, "Warning:     this node cannot start it: %s\n", r.Problem)
	}
}

func newAppsDeleteCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--yes]",
		Short: "Stop an app's instances and delete it with its history; asks first unless --yes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !yes {
				fmt.Fprintf(cmd.ErrOrStderr(), "Delete app %s? Its instances stop, and its releases, deployments, settings, storage and logs are removed; this cannot be undone. [y/N] ", name)
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr()) // no answer, nor the newline that ends one
				}
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return fmt.Errorf("app %s was not deleted: answer y to delete it, or pass --yes", name)
				}
			}
			if err := g.client().do(cmd.Context(), http.MethodDelete, "/api/v1/apps/"+url.PathEscape(name), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted app %s\n", name)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	return cmd
}
