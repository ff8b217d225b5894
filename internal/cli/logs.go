package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/atomicfile"
	"github.com/slipway-dev/slipway/internal/logs"
)

func newLogsCmd(g *globals) *cobra.Command {
	var app string
	var followLogs bool
	var tail int
	var since, instance, source string
	cmd := &cobra.Command{
		Use:   "logs -a NAME",
		Short: "Show an app's log: platform events and instance output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"tail": {strconv.Itoa(tail)}, "since": {since}, "instance": {instance}, "source": {source}}
			if followLogs {
				q.Set("follow", "1")
			}
			w := cmd.OutOrStdout()
			return g.client().stream(cmd.Context(), "/api/v1/apps/"+url.PathEscape(app)+"/logs?"+q.Encode(), func(b []byte) (bool, error) {
				if g.output == "json" {
					fmt.Fprintf(exact(w), "%s\n", b)
					return true, nil
				}
				var l logs.Line
				if err := json.Unmarshal(b, &l); err != nil {
					return false, fmt.Errorf("reading the log stream: %w", err)
				}
				if l.Stream != logs.StreamHeartbeat {
					fmt.Fprintln(w, l.Format())
				}
				return true, nil
			})
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().BoolVarP(&followLogs, "follow", "f", false, "keep streaming new lines")
	cmd.Flags().IntVarP(&tail, "tail", "n", 100, "how many recent lines to show first")
	cmd.Flags().StringVar(&since, "since", "", "only lines newer than this: a duration like 10m, or a time like 2026-01-02T15:04:05Z")
	cmd.Flags().StringVar(&instance, "instance", "", "only the lines of this instance `ID`")
	cmd.Flags().StringVar(&source, "source", "", "only platform events (platform) or instance output (app)")
	cmd.AddCommand(newLogsDownloadCmd(g))
	return cmd
}

func newLogsDownloadCmd(g *globals) *cobra.Command {
	var app, since, until, file string
	cmd := &cobra.Command{
		Use:   "download -a NAME -o FILE.zip",
		Short: "Download an app's kept log files as a zip",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"since": {since}, "until": {until}}
			resp, err := g.client().send(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/logs/download?"+q.Encode(), nil, -1)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			// A broken download never leaves a half-written zip.
			return atomicfile.WriteFrom(file, 0o600, func(w io.Writer) error {
				if _, err := io.Copy(w, resp.Body); err != nil {
					return fmt.Errorf("downloading: %w", err)
				}
				return nil
			})
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().StringVar(&since, "since", "", "only lines newer than this: a duration like 24h, or a time like 2026-01-02T15:04:05Z")
	cmd.Flags().StringVar(&until, "until", "", "only lines up to this time, like 2026-01-02T15:04:05Z")
	cmd.Flags().StringVarP(&file, "output", "o", "", "the zip `FILE` to write")
	cmd.MarkFlagRequired("output")
	return cmd
}
