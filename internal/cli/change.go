package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

// changeFlags are the flags of every verb that changes an app.
type changeFlags struct {
	app     string
	author  string
	message string
	wait    bool
	noWait  bool
}

func addChangeFlags(cmd *cobra.Command, f *changeFlags) {
	addAppFlag(cmd, &f.app)
	cmd.Flags().StringVar(&f.author, "author", "", "who makes the change (default: your user name)")
	cmd.Flags().StringVarP(&f.message, "message", "m", "", "a note kept with the change")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "if a deployment is running, queue behind it instead of failing")
	cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "return once the change is accepted, without following its deployment")
}

// path is the route of a change: suffix under the app, with the query
// every change carries. queue asks the daemon to queue the change behind
// a running deployment; unless --no-wait, wait=1 asks it to answer with
// the change's deployment as it happens (see followStream).
func (f *changeFlags) path(suffix string, extra url.Values, queue bool) string {
	q := url.Values{"author": {f.author}, "message": {f.message}, "queue": {strconv.FormatBool(queue)}}
	if q.Get("author") == "" {
		q.Set("author", localUser())
	}
	if !f.noWait {
		q.Set("wait", "1")
	}
	for k, v := range extra {
		q[k] = v
	}
	return "/api/v1/apps/" + url.PathEscape(f.app) + suffix + "?" + q.Encode()
}

// changeRequest is a change to send to the daemon.
type changeRequest struct {
	method string
	suffix string // the route under the app, like "/scale"
	extra  url.Values
	// body opens the request body, with its length (-1 if unknown), each
	// time the change is sent: one refused while a deployment runs is
	// sent again, with --wait, to queue behind it.
	body func() (io.ReadCloser, int64, error)
	// upload marks an artifact: it is sent with Expect: 100-continue, so
	// that a refusal (409, 413, 507) comes before the file is sent.
	upload bool
}

// jsonBody is a changeRequest body of v encoded as JSON.
func jsonBody(v any) func() (io.ReadCloser, int64, error) {
	b, _ := json.Marshal(v)
	return func() (io.ReadCloser, int64, error) { return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil }
}

// runChange sends a change and reports what it did. If it started a
// deployment and --no-wait is not given, the answer is that deployment as
// it happens, followed to its end (an error unless it succeeded: see
// followStream), through the route the change was made on, which the
// caller may use, whatever the app's deploy access rules say. Otherwise
// the JSON answer is decoded into answer (when there is one), and report
// says what happened from its status.
func runChange(cmd *cobra.Command, g *globals, f *changeFlags, req changeRequest, answer any, report func(status int) error) error {
	ctx, detach := context.WithCancelCause(cmd.Context())
	defer detach(nil)
	resp, err := sendChange(ctx, cmd, g, f, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if is(resp, mediaNDJSON) {
		return followStream(ctx, detach, cmd, g, resp.Body, nil, 0)
	}
	if resp.StatusCode != http.StatusNoContent {
		if err := g.client().decode(resp, answer); err != nil {
			return err
		}
	}
	return report(resp.StatusCode)
}

// sendChange sends req. A change refused because a deployment runs is,
// with --wait, sent again to queue behind it, after saying which it
// waits for; without --wait, the error says how to queue.
func sendChange(ctx context.Context, cmd *cobra.Command, g *globals, f *changeFlags, req changeRequest) (*http.Response, error) {
	for queue := false; ; queue = true {
		body, size, err := req.body()
		if err != nil {
			return nil, err
		}
		hr, err := http.NewRequestWithContext(ctx, req.method, g.client().base+f.path(req.suffix, req.extra, queue), body)
		if err != nil {
			body.Close()
			return nil, err
		}
		hr.ContentLength = size
		if req.upload {
			hr.Header.Set("Content-Type", "application/octet-stream")
			hr.Header.Set("Expect", "100-continue")
		} else {
			hr.Header.Set("Content-Type", mediaJSON)
		}
		hr.Header.Set("Accept", mediaNDJSON+", "+mediaJSON)
		resp, err := g.client().sendRequest(hr)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Running == nil || queue {
			return resp, err
		}
		if !f.wait {
			ae.Message += " (--wait queues behind it)"
			return nil, ae
		}
		d := ae.Running
		fmt.Fprintf(cmd.ErrOrStderr(), "Waiting for deployment #%d of %s to end (%s of %s by %s, started %s)…\n",
			d.ID, d.App, orDash(d.Kind), releaseName(d.Release), orDash(d.Author), d.Started.Local().Format("15:04:05"))
	}
}

// reportStarted says, for --no-wait, that deployment d started and how to
// follow it.
func reportStarted(cmd *cobra.Command, g *globals, d api.Deployment) error {
	w := cmd.OutOrStdout()
	if g.output == "json" {
		return printJSON(w, d)
	}
	fmt.Fprintf(w, "Deployment #%d of %s started; follow it with: %s\n", d.ID, d.App, showCommand(d, true))
	return nil
}

// showCommand is the command that shows deployment d, following it with
// follow.
func showCommand(d api.Deployment, follow bool) string {
	s := fmt.Sprintf("slipway deployments show -a %s %d", d.App, d.ID)
	if follow {
		s += " -f"
	}
	return s
}
