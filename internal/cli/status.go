package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/settings"
)

func newStatusCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "status -a NAME",
		Short: "Show an app's live release, its last deployment and its instances",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st api.Status
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/status", nil, &st); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "App:         %s\nRelease:     %s\n", st.App, releaseName(st.Release))
			if st.Runtime != nil {
				printRuntime(w, st.Runtime, settings.Settings{})
			}
			fmt.Fprintf(w, "Instances:   %d ready of %d wanted\n", st.Ready, st.Wanted)
			if st.CrashLooping {
				fmt.Fprintln(w, "Warning:     crash-looping: its instances keep exiting; see 'slipway logs'")
			}
			if d := st.LastDeployment; d != nil {
				fmt.Fprintf(w, "Deployment:  #%d %s of %s, %s, %s\n", d.ID, d.Kind, releaseName(d.Release), d.State, ago(d.Started))
			}
			tr := st.Traffic
			fmt.Fprintf(w, "Last minute: %d requests (%.1f/s), %.1f%% errors (5xx), p95 %s\n",
				tr.Requests, tr.PerSecond, 100*tr.ErrorRate, p95(tr))
			for _, n := range st.Nodes {
				var ids []string
				for _, i := range n.Instances {
					ids = append(ids, fmt.Sprintf("%s (%s)", i.ID, releaseName(i.Release)))
				}
				fmt.Fprintf(w, "Node %-7s %d instance(s): %s\n", n.Node+":", len(n.Instances), strings.Join(ids, ", "))
			}
			if len(st.Nodes) > 0 {
				fmt.Fprintf(w, "\nOn this node (%s):\n", st.Node)
			}
			if len(st.Instances) == 0 {
				fmt.Fprintln(w, "\nNo instance is running.")
				return nil
			}
			fmt.Fprintln(w)
			rows := make([][]string, 0, len(st.Instances))
			for _, i := range st.Instances {
				state := i.State
				if i.Note != "" {
					state += " (" + i.Note + ")"
				}
				uptime := "-"
				if !i.Started.IsZero() {
					uptime = time.Since(i.Started).Round(time.Second).String()
				}
				rows = append(rows, []string{i.ID, releaseName(i.Release), strconv.Itoa(i.Port), strconv.Itoa(i.PID), state, uptime,
					strconv.Itoa(i.Restarts), strconv.FormatInt(i.InFlight, 10)})
			}
			return table(w, []string{"INSTANCE", "RELEASE", "PORT", "PID", "STATE", "UPTIME", "RESTARTS", "IN FLIGHT"}, rows)
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

// p95 renders the p95 latency bound: "≤ 25ms", or "-" without requests.
func p95(tr api.Traffic) string {
	if tr.Requests == 0 {
		return "-"
	}
	return "≤ " + time.Duration(tr.P95*float64(time.Second)).String()
}
