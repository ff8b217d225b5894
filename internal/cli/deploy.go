package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

func newDeployCmd(g *globals) *cobra.Command {
	f := &changeFlags{}
	cmd := &cobra.Command{
		Use:   "deploy -a NAME FILE",
		Short: "Upload a jar, war or zip and take it live with zero downtime",
		Long: `Upload FILE and take it live: Slipway starts the new release beside the
old one, warms it up, switches traffic in one step and retires the old
instances once their requests are done. The steps are printed as they
happen; the command exits non-zero with the reason if the deployment fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if fi, err := os.Stat(path); err != nil {
				return err
			} else if fi.IsDir() {
				return fmt.Errorf("%s is a directory; deploy a jar, war or zip file", path)
			}
			req := changeRequest{method: http.MethodPost, suffix: "/deployments", extra: url.Values{"filename": {filepath.Base(path)}}, upload: true,
				body: func() (io.ReadCloser, int64, error) {
					file, err := os.Open(path)
					if err != nil {
						return nil, 0, err
					}
					fi, err := file.Stat()
					if err != nil {
						file.Close()
						return nil, 0, err
					}
					return file, fi.Size(), nil
				}}
			var d api.Deployment
			return runChange(cmd, g, f, req, &d, func(int) error { return reportStarted(cmd, g, d) })
		},
	}
	addChangeFlags(cmd, f)
	cmd.AddCommand(newDeployCancelCmd(g))
	return cmd
}

func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// followStream prints a followed deployment's lines from r (NDJSON
// api.FollowLines) until it ends, and returns an error if it did not
// succeed. d is the deployment followed, if known before its first line
// (an answer to a change names it in its first line instead, and then
// the header is printed); its first skip events are not shown (they have
// been). Ctrl-C asks whether to cancel it (see onInterrupt); detach, with
// errDetached, ends the request that r reads.
func followStream(ctx context.Context, detach context.CancelCauseFunc, cmd *cobra.Command, g *globals, r io.Reader, d *api.Deployment, skip int) error {
	w := cmd.OutOrStdout()
	stop := func() {}
	defer func() { stop() }()
	watch := func(d api.Deployment) {
		stop = onInterrupt(cmd, g, d, func() { detach(errDetached) })
	}
	if d != nil {
		watch(*d)
	}
	var final *api.Deployment
	err := readLines(r, func(b []byte) (bool, error) {
		var l api.FollowLine
		if err := json.Unmarshal(b, &l); err != nil {
			return false, fmt.Errorf("reading the deployment's events: %w", err)
		}
		if l.Event != nil && skip > 0 {
			skip--
			return true, nil
		}
		if g.output == "json" {
			fmt.Fprintf(exact(w), "%s\n", b)
		}
		switch {
		case l.Event != nil:
			printEvent(w, g, l.Event)
		case l.Deployment != nil && l.Deployment.State == api.StateRunning && d == nil:
			d = l.Deployment
			if g.output == "table" {
				fmt.Fprintf(w, "Deployment #%d of %s (%s): release %s\n", d.ID, d.App, d.Kind, releaseName(d.Release))
			}
			watch(*d)
		case l.Deployment != nil:
			final = l.Deployment
		}
		return final == nil, nil
	})
	if errors.Is(context.Cause(ctx), errDetached) {
		return &exitError{code: 130, err: fmt.Errorf("%w deployment #%d; it goes on", errDetached, d.ID)}
	}
	if err != nil {
		return err
	}
	if final == nil {
		return errors.New("the daemon ended the event stream before the deployment finished")
	}
	if final.State != api.StateSucceeded {
		return fmt.Errorf("deployment #%d %s: %s", final.ID, final.State, final.Reason)
	}
	return nil
}

func printEvent(w io.Writer, g *globals, e *api.Event) {
	if g.output == "json" {
		return
	}
	step := e.Step
	if step == "" {
		step = "…"
	}
	msg := strings.ReplaceAll(e.Message, "\n", "\n"+strings.Repeat(" ", 34))
	fmt.Fprintf(w, "%s  %-22s  %s\n", e.At.Local().Format("15:04:05"), step, msg)
}

func newDeployCancelCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "cancel -a NAME",
		Short: "Cancel the app's running deployment; the previous release keeps serving",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/api/v1/apps/" + url.PathEscape(app) + "/deployments/current/cancel"
			if err := g.client().do(cmd.Context(), http.MethodPost, path, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cancelling the running deployment of %s\n", app)
			return nil
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}
