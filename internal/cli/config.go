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

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/store"
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
		cmdLine = "the stack's: java $JAVA_OPTS -jar app.jar --server.port=$PORT"
	}
	fmt.Fprintln(w)
	return table(w, []string{"OPTION", "VALUE", ""}, [][]string{
		{"command", cmdLine, def(s.Command != "")},
		{"instances", strconv.Itoa(e.Instances), def(s.Instances != 0)},
		{"warmup-path", e.WarmupPath, def(s.WarmupPath != "")},
		{"warmup-status", e.WarmupStatus, def(s.WarmupStatus != "")},
		{"start-time-limit", fmt.Sprintf("%ds", e.StartTimeLimit), def(s.StartTimeLimit != 0)},
		{"drain-timeout", fmt.Sprintf("%ds", e.DrainTimeout), def(s.DrainTimeout != 0)},
		{"stop-grace", fmt.Sprintf("%ds", e.StopGrace), def(s.StopGrace != 0)},
		{"health-path", e.HealthPath, def(s.HealthPath != "")},
		{"health-interval", fmt.Sprintf("%ds", e.HealthInterval), def(s.HealthInterval != 0)},
		{"health-timeout", fmt.Sprintf("%ds", e.HealthTimeout), def(s.HealthTimeout != 0)},
		{"health-threshold", strconv.Itoa(e.HealthThreshold), def(s.HealthThreshold != 0)},
		{"hold-timeout", fmt.Sprintf("%ds", e.HoldTimeout), def(s.HoldTimeout != 0)},
		{"access-log", strconv.FormatBool(e.AccessLog), def(s.AccessLog)},
	})
}

// sendChange validates c locally, as the daemon will, then sends it.
func sendChange(cmd *cobra.Command, g *globals, f *changeFlags, c store.Change, noRestart bool) error {
	if _, err := c.Apply(store.Settings{}); err != nil {
		return err
	}
	extra := url.Values{}
	if noRestart {
		extra.Set("no_restart", "1")
	}
	var v api.SettingsView
	d, err := postChange(cmd, g, f, http.MethodPatch, f.path("/settings", extra), c, &v)
	if err != nil {
		return err
	}
	if d == nil && g.output == "table" {
		fmt.Fprintf(cmd.OutOrStdout(), "Settings of %s saved; they take effect at the next deployment.\n", f.app)
	}
	if d == nil && g.output == "json" {
		return printJSON(cmd.OutOrStdout(), v)
	}
	return followOrReport(cmd, g, f, d)
}

func newConfigSetCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var secret, noRestart bool
	cmd := &cobra.Command{
		Use:   "set -a NAME KEY=VALUE...",
		Short: "Set environment variables, in one change",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := store.ParseEnvPairs(args)
			if err != nil {
				return err
			}
			return sendChange(cmd, g, f, store.Change{Set: env, Secret: secret}, noRestart)
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
			return sendChange(cmd, g, f, store.Change{Unset: args}, noRestart)
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
			return sendChange(cmd, g, f, store.Change{Command: &args[0]}, noRestart)
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
			return sendChange(cmd, g, f, store.Change{Command: &empty}, noRestart)
		},
	}
	addChangeFlags(cmd, f)
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "record the change for the next deployment instead of taking it live now")
	return cmd
}

func newConfigOptionsCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	var noRestart bool
	var path, status, healthPath string
	var limit, drain, grace, hInterval, hTimeout, hThreshold, hold int
	var accessLog bool
	cmd := &cobra.Command{
		Use:   "options -a NAME [--warmup-path P] [--warmup-status S] [--start-time-limit N] [--drain-timeout N] [--stop-grace N] [--health-… N] [--hold-timeout N]",
		Short: "Change the warmup, health and stop options; 0 or \"\" means the default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			str := func(name string, v *string) *string { return changed(fl.Changed(name), v) }
			num := func(name string, v *int) *int { return changed(fl.Changed(name), v) }
			c := store.Change{
				WarmupPath: str("warmup-path", &path), WarmupStatus: str("warmup-status", &status),
				StartTimeLimit: num("start-time-limit", &limit), DrainTimeout: num("drain-timeout", &drain), StopGrace: num("stop-grace", &grace),
				HealthPath: str("health-path", &healthPath), HealthInterval: num("health-interval", &hInterval),
				HealthTimeout: num("health-timeout", &hTimeout), HealthThreshold: num("health-threshold", &hThreshold),
				HoldTimeout: num("hold-timeout", &hold), AccessLog: changed(fl.Changed("access-log"), &accessLog),
			}
			if c.Empty() {
				return fmt.Errorf("give at least one option to change; 'slipway config list -a %s' shows them", f.app)
			}
			return sendChange(cmd, g, f, c, noRestart)
		},
	}
	addChangeFlags(cmd, f)
	fl := cmd.Flags()
	fl.BoolVar(&noRestart, "no-restart", false, "record the change for the next deployment instead of taking it live now")
	fl.StringVar(&path, "warmup-path", "", "the path requested until the instance is ready (default "+store.DefaultWarmupPath+")")
	fl.StringVar(&status, "warmup-status", "", "the statuses that count as ready (default "+store.DefaultWarmupStatus+")")
	fl.IntVar(&limit, "start-time-limit", 0, fmt.Sprintf("seconds an instance may take to become ready (default %d, at most %d)", store.DefaultStartTimeLimitSecs, store.MaxStartTimeLimitSecs))
	fl.IntVar(&drain, "drain-timeout", 0, fmt.Sprintf("seconds old instances get to finish their requests (default %d)", store.DefaultDrainTimeoutSecs))
	fl.IntVar(&grace, "stop-grace", 0, fmt.Sprintf("seconds between SIGTERM and SIGKILL (default %d)", store.DefaultStopGraceSecs))
	fl.StringVar(&healthPath, "health-path", "", "the path checked while an instance serves (default: the warmup path)")
	fl.IntVar(&hInterval, "health-interval", 0, fmt.Sprintf("seconds between health checks (default %d)", store.DefaultHealthIntervalSecs))
	fl.IntVar(&hTimeout, "health-timeout", 0, fmt.Sprintf("seconds a health check may take (default %d)", store.DefaultHealthTimeoutSecs))
	fl.IntVar(&hThreshold, "health-threshold", 0, fmt.Sprintf("failed checks in a row before an instance is replaced (default %d)", store.DefaultHealthThreshold))
	fl.IntVar(&hold, "hold-timeout", 0, fmt.Sprintf("seconds a request waits when no instance is ready, before 503 (default %d)", store.DefaultHoldTimeoutSecs))
	fl.BoolVar(&accessLog, "access-log", false, "write a line per request to the app's log (--access-log=false turns it off)")
	return cmd
}

// changed returns v if its flag was given, nil (leave as it is) otherwise.
func changed[T any](given bool, v *T) *T {
	if given {
		return v
	}
	return nil
}
