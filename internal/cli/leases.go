package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

func newLeasesCmd(g *globals) *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "leases -a NAME",
		Short: "Show the leases an app's instances hold: name, holder and its release, fencing token, expiry",
		Long: `Show the leases an app's instances hold. An instance takes one through its
SLIPWAY_LEASE_URL so that a job runs in one instance at a time; the single
runner lease (config options --single-runner) is the one the platform holds
for one instance of the live release.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ls []api.Lease
			if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/leases", nil, &ls); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), ls)
			}
			return printLeases(cmd.OutOrStdout(), app, ls, time.Now())
		},
	}
	addAppFlag(cmd, &app)
	return cmd
}

// printLeases writes the table of leases, their expiry counted from now.
func printLeases(w io.Writer, app string, ls []api.Lease, now time.Time) error {
	if len(ls) == 0 {
		_, err := fmt.Fprintf(w, "No instance of %s holds a lease.\n", app)
		return err
	}
	rows := make([][]string, 0, len(ls))
	for _, l := range ls {
		name, expires := l.Name, expiry(l.Expires, now)
		if l.SingleRunner {
			name += " (single runner)"
			expires = "when its holder stops"
		}
		rows = append(rows, []string{name, l.Holder, releaseName(l.Release), strconv.FormatInt(l.FencingToken, 10), expires})
	}
	return table(w, []string{"NAME", "HOLDER", "RELEASE", "FENCING TOKEN", "EXPIRES"}, rows)
}

// expiry says when t comes: "in 12s", with the time of day where now is.
func expiry(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d <= 0 {
		return "now"
	}
	return fmt.Sprintf("in %s (%s)", d, t.In(now.Location()).Format("15:04:05"))
}
