package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
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
	var app, since, until string
	cmd := &cobra.Command{
		Use:   "download -a NAME FILE.zip",
		Short: "Download an app's kept log files, as text in a zip, to FILE.zip",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("name the zip file to write, like: slipway logs download -a NAME logs.zip")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			q := url.Values{"since": {since}, "until": {until}}
			c := g.client()
			resp, err := c.send(cmd.Context(), http.MethodGet, "/api/v1/apps/"+url.PathEscape(app)+"/logs/download?"+q.Encode(), nil, -1)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if err := c.expect(resp, "application/zip"); err != nil {
				return err
			}
			// A broken download never leaves a half-written zip.
			var n int64
			err = atomicfile.WriteFrom(file, 0o600, func(w io.Writer) error {
				if n, err = io.Copy(w, resp.Body); err != nil {
					return fmt.Errorf("downloading: %w", err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(file)
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), struct {
					File  string `json:"file"`
					Bytes int64  `json:"bytes"`
				}{abs, n})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote the logs of %s to %s (%d bytes).\n", app, abs, n)
			return nil
		},
	}
	addAppFlag(cmd, &app)
	cmd.Flags().StringVar(&since, "since", "", "only lines newer than this: a duration like 24h, or a time like 2026-01-02T15:04:05Z")
	cmd.Flags().StringVar(&until, "until", "", "only lines up to this time, like 2026-01-02T15:04:05Z")
	return cmd
}
