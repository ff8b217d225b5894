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

// query is the query string every change request carries.
func (f *changeFlags) query(extra url.Values) string {
	q := url.Values{"author": {f.author}, "message": {f.message}}
	if q.Get("author") == "" {
		q.Set("author", localUser())
	}
	if f.wait {
		q.Set("wait", "1")
	}
	for k, v := range extra {
		q[k] = v
	}
	return q.Encode()
}

func (f *changeFlags) path(suffix string, extra url.Values) string {
	return "/api/v1/apps/" + url.PathEscape(f.app) + suffix + "?" + f.query(extra)
}

// postChange sends a change and, if it started a deployment, follows it
// like `slipway deploy` does. body is encoded as JSON.
func postChange(cmd *cobra.Command, g *globals, f *changeFlags, method, path string, body any, out any) (*api.Deployment, error) {
	b, _ := json.Marshal(body)
	resp, err := g.client().send(cmd.Context(), method, path, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	raw := json.RawMessage{}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if out != nil {
		json.Unmarshal(raw, out)
	}
	var d api.Deployment
	if err := json.Unmarshal(raw, &d); err != nil || d.ID == 0 {
		var wrapped struct{ Deployment *api.Deployment }
		json.Unmarshal(raw, &wrapped)
		if wrapped.Deployment == nil {
			return nil, nil
		}
		d = *wrapped.Deployment
	}
	return &d, nil
}

// followOrReport follows d unless --no-wait, and says what happened.
func followOrReport(cmd *cobra.Command, g *globals, f *changeFlags, d *api.Deployment) error {
	w := cmd.OutOrStdout()
	if d == nil {
		return nil
	}
	if f.noWait {
		if g.output == "json" {
			return printJSON(w, d)
		}
		fmt.Fprintf(w, "Deployment #%d of %s started; follow it with: slipway deployments -a %s\n", d.ID, d.App, d.App)
		return nil
	}
	if g.output == "table" {
		fmt.Fprintf(w, "Deployment #%d of %s (%s): release %s\n", d.ID, d.App, d.Kind, releaseName(d.Release))
	}
	return follow(cmd, g, *d)
}
