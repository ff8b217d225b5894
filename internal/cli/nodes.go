package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

func newNodesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the cluster's nodes: address, labels, state, apps and instances",
		Long: `List the nodes of the cluster this daemon is in (one, unless nodes
joined it with 'slipway server --join'). A node is ready, catching up (it
starts its apps' live releases before its health endpoint answers), joining,
or down (it stopped renewing its lease; it may come back, or be removed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return listNodes(cmd, g) },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the cluster's nodes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return listNodes(cmd, g) },
	}, &cobra.Command{
		Use:   "remove NAME",
		Short: "Take a dead node out of the cluster's membership",
		Long: `Take a node that is gone for good out of the cluster: out of etcd's
membership (so that the majority is counted without it), with its
registration and the records of its instances. A node that is alive is
refused: stop it first. The node cannot come back with its data directory;
to have it again, empty that and join it anew.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().do(cmd.Context(), http.MethodDelete, "/api/v1/nodes/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed node %s from the cluster.\n", args[0])
			return nil
		},
	})
	return cmd
}

func listNodes(cmd *cobra.Command, g *globals) error {
	var nodes []api.Node
	if err := g.client().do(cmd.Context(), http.MethodGet, "/api/v1/nodes", nil, &nodes); err != nil {
		return err
	}
	if g.output == "json" {
		return printJSON(cmd.OutOrStdout(), nodes)
	}
	rows := make([][]string, 0, len(nodes))
	for _, n := range nodes {
		name := n.Name
		if n.Coordinator {
			name += " (coordinator)"
		}
		if n.Self {
			name += " (this one)"
		}
		rows = append(rows, []string{name, orDash(n.APIURL), orDash(labels(n.Labels)), n.State, strconv.Itoa(n.Apps), strconv.Itoa(n.Instances)})
	}
	return table(cmd.OutOrStdout(), []string{"NAME", "ADDRESS", "LABELS", "STATE", "APPS", "INSTANCES"}, rows)
}

func labels(m map[string]string) string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func newAdminJoinTokenCmd(g *globals) *cobra.Command {
	var ttl string
	cmd := &cobra.Command{
		Use:   "join-token",
		Short: "Make a token for another node to join this one's cluster",
		Long: `Make a join token: another node joins this one's cluster with
'slipway server --join URL --join-token TOKEN', URL being this node's API
as you reach it. The token is shown once and is good for --ttl, for any
number of nodes. It names the cluster CA, so that the joining node knows
it talks to this cluster. The first token makes a node that ran alone take
peers: it opens its peer port (--peer-port) on its advertised address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, _ := json.Marshal(api.JoinTokenRequest{TTL: ttl})
			var t api.JoinToken
			if err := g.client().do(cmd.Context(), http.MethodPost, "/api/v1/admin/join-token", bytes.NewReader(body), &t); err != nil {
				return err
			}
			if g.output == "json" {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "A join token, good until %s (shown this once):\n\n    %s\n\nOn the new node, with an empty data directory:\n\n    slipway server --join %s --join-token %s\n",
				t.Expires.Format("2006-01-02 15:04 MST"), t.Token, g.url, t.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "1h", "how long the token is good for, at most 168h")
	return cmd
}
