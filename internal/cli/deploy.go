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
			d, err := upload(cmd, g, f, args[0])
			if err != nil {
				return err
			}
			return followOrReport(cmd, g, f, &d)
		},
	}
	addChangeFlags(cmd, f)
	cmd.AddCommand(newDeployCancelCmd(g))
	return cmd
}

// upload streams the file to the daemon, which starts a deployment.
func upload(cmd *cobra.Command, g *globals, f *changeFlags, path string) (api.Deployment, error) {
	file, err := os.Open(path)
	if err != nil {
		return api.Deployment{}, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return api.Deployment{}, err
	}
	if fi.IsDir() {
		return api.Deployment{}, fmt.Errorf("%s is a directory; deploy a jar, war or zip file", path)
	}
	resp, err := g.client().send(cmd.Context(), http.MethodPost, f.path("/deployments", url.Values{"filename": {filepath.Base(path)}}), file, fi.Size())
	if err != nil {
		return api.Deployment{}, err
	}
	defer resp.Body.Close()
	var d api.Deployment
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return api.Deployment{}, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	return d, nil
}

func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// follow prints the deployment's events until it ends; an error if it did
// not succeed.
func follow(cmd *cobra.Command, g *globals, d api.Deployment) error {
	w := cmd.OutOrStdout()
	var final *api.Deployment
	path := fmt.Sprintf("/api/v1/apps/%s/deployments/%d/events", url.PathEscape(d.App), d.ID)
	ctx, detach := context.WithCancelCause(cmd.Context())
	defer detach(nil)
	stop := onInterrupt(cmd, g, d, func() { detach(errDetached) })
	defer stop()
	err := g.client().stream(ctx, path, func(b []byte) (bool, error) {
		var l api.FollowLine
		if err := json.Unmarshal(b, &l); err != nil {
			return false, fmt.Errorf("reading the deployment's events: %w", err)
		}
		if l.Event != nil {
			printEvent(w, g, b, l.Event)
		}
		final = l.Deployment
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

func printEvent(w io.Writer, g *globals, raw []byte, e *api.Event) {
	if g.output == "json" {
		fmt.Fprintf(exact(w), "%s\n", raw)
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
