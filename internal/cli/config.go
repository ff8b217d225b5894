package cli

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/settings"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and change an app's settings: environment, startup command, warmup and stop options",
		Long: `Show and change an app's settings. A change makes a new release (the same
artifact, the new settings) and takes it live through warm-up and swap, like
a deploy; --no-restart records it for the next deployment instead.

Precedence, as Spring resolves it: arguments in the startup command beat
environment variables (app settings), which beat the platform's defaults.`,
	}
	cmd.AddCommand(newConfigListCmd(g), newConfigSetCmd(g), newConfigUnsetCmd(g),
		newConfigSetCommandCmd(g), newConfigUnsetCommandCmd(g), newConfigOptionsCmd(g))
	return cmd
}

func newConfigListCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "list -a NAME",
		Short: "List an app's settings; secrets show as ****",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v api.SettingsView
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/settings", nil, &v); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), v)
			}
			return printSettings(cmd, v)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

func printSettings(cmd *cobra.Command, v api.SettingsView) error {
	w := cmd.OutOrStdout()
	s, e := v.Settings, v.Effective
	rows := [][]string{}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		note := ""
		if s.IsSecret(k) {
			note = "secret"
		}
		rows = append(rows, []string{k, s.Env[k], note})
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "No environment variables.")
	} else if err := table(w, []string{"VARIABLE", "VALUE", ""}, rows); err != nil {
		return err
	}
	def := func(set bool) string {
		if set {
			return ""
		}
		return "(default)"
	}
	cmdLine := e.Command
	if cmdLine == "" {
		cmdLine = "the stack's (java: java $JAVA_OPTS -jar app.jar --server.port=$PORT; tomcat: Tomcat's Bootstrap)"
	}
	rows = [][]string{
		{"command", cmdLine, def(s.Command != "")},
		{"instances", strconv.Itoa(e.Instances), def(s.Instances != 0)},
	}
	for _, o := range settings.Options() {
		rows = append(rows, []string{o.Flag, o.Format(e), def(o.IsSet(s))})
	}
	fmt.Fprintln(w)
	return table(w, []string{"OPTION", "VALUE", ""}, rows)
}

// changeSettings validates c locally, as the daemon will, then sends it.
func changeSettings(cmd *cobra.Command, g *globals, f *changeFlags, c settings.Change, noRestart bool) error {
	if _, err := c.Apply(settings.Settings{}); err != nil {
		return err
	}
	extra := url.Values{}
	if noRestart {
		extra.Set("no_restart", "1")
	}
	var v api.SettingsChange
	req := changeRequest{method: http.MethodPatch, suffix: "/settings", extra: extra, body: jsonBody(c)}
	return runChange(cmd, g, f, req, &v, func(int) error {
		w := cmd.OutOrStdout()
		switch {
		case g.output == "json":
			return printJSON(w, v)
		case v.Deployment != nil:
			return reportStarted(cmd, g, *v.Deployment)
		default:
			// Nothing changed, or saved for the next deployment: the
			// daemon says which.
			fmt.Fprintln(w, upperFirst(v.Message)+".")
			return nil
		}
	})
}

// upperFirst returns s with its first letter in upper case, as a
// sentence begins.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func newConfigSetCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var secret, noRestart bool
	cmd := &cobra.Command{
		Use:   "set -a NAME KEY=VALUE...",
		Short: "Set environment variables, in one change",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := settings.ParseEnvPairs(args)
			if err != nil {
				return err
			}
			return changeSettings(cmd, g, f, settings.Change{Set: env, Secret: secret}, noRestart)
		},
	}
	addChangeFlags(cmd, f)
	cmd.Flags().BoolVar(&secret, "secret", false, "never show these values again (the API, the CLI and the logs show ****)")
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "record the change for the next deployment instead of taking it live now")
	return cmd
}

func newConfigUnsetCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var noRestart bool
	cmd := &cobra.Command{
		Use:   "unset -a NAME KEY...",
		Short: "Remove environment variables, in one change",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, k := range args {
				if strings.Contains(k, "=") {
					return fmt.Errorf("unset takes names, not %q", k)
				}
			}
			return changeSettings(cmd, g, f, settings.Change{Unset: args}, noRestart)
		},
	}
	addChangeFlags(cmd, f)
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "record the change for the next deployment instead of taking it live now")
	return cmd
}

func newConfigSetCommandCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var noRestart bool
	cmd := &cobra.Command{
		Use:   `set-command -a NAME "COMMAND"`,
		Short: "Set the startup command, run by /bin/sh in the release directory",
		Long: `Set the startup command, run by /bin/sh in the release directory. It may use
$PORT and the app's settings; for example:
  slipway config set-command -a promo 'exec java $JAVA_OPTS -jar app.jar --server.port=$PORT --spring.profiles.active=prod'
Arguments in the command beat environment variables, which beat the platform's defaults.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return fmt.Errorf("the command is empty; use unset-command to go back to the stack's")
			}
			return changeSettings(cmd, g, f, settings.Change{Command: &args[0]}, noRestart)
		},
	}
	addChangeFlags(cmd, f)
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "record the change for the next deployment instead of taking it live now")
	return cmd
}

func newConfigUnsetCommandCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var noRestart bool
	cmd := &cobra.Command{
		Use:   "unset-command -a NAME",
		Short: "Go back to the stack's startup command",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			empty := ""
			return changeSettings(cmd, g, f, settings.Change{Command: &empty}, noRestart)
		},
	}
	addChangeFlags(cmd, f)
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "record the change for the next deployment instead of taking it live now")
	return cmd
}

func newConfigOptionsCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var noRestart bool
	var vals settings.Settings // the options' flags, bound to their fields
	cmd := &cobra.Command{
		Use:   "options -a NAME [--OPTION VALUE]...",
		Short: "Change the stack, the Java version, and the warmup, health, stop and access log options; 0 or \"\" means the default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := optionChange(cmd.Flags(), vals)
			if c.Empty() {
				return fmt.Errorf("give at least one option to change; 'slipway config list -a %s' shows them", f.app)
			}
			return changeSettings(cmd, g, f, c, noRestart)
		},
	}
	addChangeFlags(cmd, f)
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "record the change for the next deployment instead of taking it live now")
	addOptionFlags(cmd.Flags(), &vals)
	return cmd
}

// optionChange is the change of the options whose flags were given, to
// the values in vals.
func optionChange(fl *pflag.FlagSet, vals settings.Settings) settings.Change {
	c := settings.Change{Options: map[string]any{}}
	for _, o := range settings.Options() {
		if fl.Changed(o.Flag) {
			c.Options[o.Key] = o.Value(vals)
		}
	}
	return c
}

// addOptionFlags adds a flag for each option of the settings, bound to its
// field of s. Their zero values mean "the default", which their help tells.
func addOptionFlags(fl *pflag.FlagSet, s *settings.Settings) {
	for _, o := range settings.Options() {
		switch p := o.Field(s).(type) {
		case *int:
			fl.IntVar(p, o.Flag, 0, o.Usage())
		case *string:
			fl.StringVar(p, o.Flag, "", o.Usage())
		case *bool:
			fl.BoolVar(p, o.Flag, false, o.Usage())
		default:
			panic(fmt.Sprintf("option %s: no flag for a %T", o.Key, p)) // a new kind of option needs a case here
		}
	}
}
