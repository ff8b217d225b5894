package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/daemon"
	"github.com/slipway-dev/slipway/internal/deploy"
)

func newServerCmd() *cobra.Command {
	c := daemon.Config{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Slipway daemon: the router, the API and the apps' instances",
		Long: `Run the Slipway daemon. Every flag can also be set by an environment
variable: --data-dir by SLIPWAY_DATA_DIR, --http-listen by SLIPWAY_HTTP_LISTEN, …
SIGINT or SIGTERM shut it down cleanly: the router finishes the requests in
flight, and every instance is stopped (unless --keep-instances). Instances
outlive a daemon that crashes or is killed; the next daemon adopts them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if c.Debug {
				level = slog.LevelDebug
			}
			c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return daemon.Run(ctx, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.DataDir, "data-dir", daemon.DefaultDataDir(), "where Slipway keeps its state, artifacts, releases and logs")
	f.StringVar(&c.HTTPListen, "http-listen", daemon.DefaultHTTPListen, "the router's address, for the apps' traffic")
	f.StringVar(&c.APIListen, "api-listen", daemon.DefaultAPIListen, "the control API's address")
	f.StringVar(&c.BaseDomain, "base-domain", daemon.DefaultBaseDomain, "app NAME is served at NAME.<base-domain>")
	f.Int64Var(&c.MaxUpload, "max-upload", artifact.DefaultMaxUpload, "the largest artifact upload, in bytes")
	f.IntVar(&c.KeepReleases, "keep-releases", deploy.DefaultKeepReleases, "how many recent releases of each app keep their artifacts, for rollback")
	f.BoolVar(&c.KeepInstances, "keep-instances", false, "leave the apps' instances running when the daemon stops, for the next daemon to adopt (they always survive a crash)")
	f.BoolVar(&c.Debug, "debug", false, "log more, embedded etcd's own logs included")
	return cmd
}
