// Package cli holds the slipway verbs, one file per verb. Every verb but
// `server` is a client of the daemon's HTTP API.
package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/version"
)

// DefaultURL is where the CLI finds the daemon's API.
const DefaultURL = "http://127.0.0.1:7070"

// globals are the flags every verb takes.
type globals struct {
	url    string
	output string
	token  string
	// tokenFrom says where token came from, or where none was found (see
	// resolve).
	tokenFrom string
	caCert    string
	rt        http.RoundTripper
}

// Main runs the CLI with args and returns the exit code.
func Main(args []string) int {
	if len(args) > 0 && args[0] == runtime.LauncherArg { // the daemon starting an instance under Landlock
		return runtime.Launch(args[1:])
	}
	return execute(args, os.Stdin, os.Stdout, os.Stderr)
}

// execute runs a verb with its standard streams and returns the exit code.
func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		// An error may quote the daemon, and so an app's output.
		fmt.Fprintln(stderr, "Error:", sanitize(err.Error()))
		var ex *exitError
		if errors.As(err, &ex) {
			return ex.code
		}
		return 1
	}
	return 0
}

// offline is the annotation of the verbs that do not talk to the API,
// which need no URL and no token.
const offline = "offline"

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "slipway",
		Short:         "Slipway: a self-hosted app service for JVM web apps",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Text for people may hold an app's output: defuse it (see
			// termWriter). JSON goes around, through exact.
			root := cmd.Root()
			root.SetOut(toTerminal(root.OutOrStdout()))
			root.SetErr(toTerminal(root.ErrOrStderr()))
			urlFrom, tokenFrom := flagSource(cmd.Flags(), "url"), flagSource(cmd.Flags(), "token")
			if err := bindEnv(cmd.Flags()); err != nil {
				return err
			}
			if urlFrom == "" && cmd.Flags().Changed("url") {
				urlFrom = "SLIPWAY_URL"
			}
			if tokenFrom == "" && cmd.Flags().Changed("token") {
				tokenFrom = "SLIPWAY_TOKEN"
			}
			if g.output != "table" && g.output != "json" {
				return fmt.Errorf("--output %q: use table or json (-o is the output format everywhere)", g.output)
			}
			if cmd.Annotations[offline] != "" {
				return nil
			}
			var err error
			if g.rt, err = g.transport(); err != nil {
				return err
			}
			return g.resolve(urlFrom, tokenFrom)
		},
	}
	root.PersistentFlags().StringVar(&g.url, "url", DefaultURL, "the daemon's API `URL` (env SLIPWAY_URL)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().StringVar(&g.token, "token", "", "the API `TOKEN` (env SLIPWAY_TOKEN; default: from 'slipway login', else the local daemon's admin.token)")
	root.PersistentFlags().StringVar(&g.caCert, "ca-cert", "", "a CA certificate `FILE` (PEM) to trust for an API served over TLS (env SLIPWAY_CA_CERT)")
	root.AddCommand(
		newServerCmd(),
		newAppsCmd(g),
		newDeployCmd(g),
		newDeploymentsCmd(g),
		newLogsCmd(g),
		newConfigCmd(g),
		newScaleCmd(g),
		newRestartCmd(g),
		newRollbackCmd(g),
		newReleasesCmd(g),
		newStatusCmd(g),
		newLeasesCmd(g),
		newLoginCmd(g),
		newLogoutCmd(g),
		newCredentialsCmd(g),
		newAccessCmd(g),
		newDomainsCmd(g),
		newAdminCmd(g),
		newNodesCmd(g),
		newVersionCmd(g),
	)
	root.SetVersionTemplate("slipway {{.Version}}\n")
	return root
}

// flagSource is "--NAME" if the flag was given on the command line (call
// it before bindEnv), else "".
func flagSource(fs *pflag.FlagSet, name string) string {
	if fs.Changed(name) {
		return "--" + name
	}
	return ""
}

// bindEnv sets every flag not given on the command line from its variable
// SLIPWAY_<FLAG>, e.g. --data-dir from SLIPWAY_DATA_DIR.
func bindEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "SLIPWAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil { // Set marks it Changed, as if given
				err = fmt.Errorf("%s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// addAppFlag adds the --app/-a flag every per-app verb takes.
func addAppFlag(cmd *cobra.Command, app *string) {
	cmd.Flags().StringVarP(app, "app", "a", "", "the app's `NAME`")
	cmd.MarkFlagRequired("app")
}
