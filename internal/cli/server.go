package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/access"
	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/daemon"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/runtime"
)

func newServerCmd() *cobra.Command {
	c := daemon.Config{}
	var retentionDays int
	var trusted string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Slipway daemon: the router, the API and the apps' instances",
		Long: `Run the Slipway daemon. Every flag can also be set by an environment
variable: --data-dir by SLIPWAY_DATA_DIR, --http-listen by SLIPWAY_HTTP_LISTEN, …
SIGINT or SIGTERM shut it down cleanly: the router finishes the requests in
flight, and every instance is stopped (unless --keep-instances). Instances
outlive a daemon that crashes or is killed; the next daemon adopts them.

SIGHUP (or 'slipway admin upgrade') upgrades the daemon: the binary at its
path starts with the listening sockets, takes over the data directory and
the instances, and the old process exits once the new one serves; no
connection is refused. If the new binary fails, the old one serves on.

--restore FILE restores a backup ('slipway admin backup') into an empty
data directory, then starts every app's live release.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{offline: "yes"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if c.Debug {
				level = slog.LevelDebug
			}
			c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			c.Logs.Retention = time.Duration(retentionDays) * 24 * time.Hour
			var err error
			if c.TrustedProxies, err = access.ParseNetworks(trusted); err != nil {
				return fmt.Errorf("--trusted-proxies: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return daemon.Run(ctx, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.DataDir, "data-dir", daemon.DefaultDataDir(), "where Slipway keeps its state, artifacts, releases and logs")
	f.StringVar(&c.HTTPListen, "http-listen", daemon.DefaultHTTPListen, "the router's address, for the apps' traffic")
	f.StringVar(&c.APIListen, "api-listen", daemon.DefaultAPIListen, "the control API's address")
	f.StringVar(&c.LeaseListen, "lease-listen", daemon.DefaultLeaseListen, "the lease endpoint's address, on loopback, which instances reach at $SLIPWAY_LEASE_URL; port 0 picks one at the first start and keeps it")
	f.StringVar(&c.BaseDomain, "base-domain", daemon.DefaultBaseDomain, "app NAME is served at NAME.<base-domain>")
	f.Int64Var(&c.MaxUpload, "max-upload", artifact.DefaultMaxUpload, "the largest artifact upload, in bytes")
	f.Int64Var(&c.MinFreeSpace, "min-free-space", 0, "free space, in bytes, that uploads and new releases leave on the data directory's disk for the store and the logs; 0 means 512 MiB or 5% of the disk, whichever is less")
	f.IntVar(&c.KeepReleases, "keep-releases", deploy.DefaultKeepReleases, "how many recent releases of each app keep their artifacts, for rollback")
	f.BoolVar(&c.KeepInstances, "keep-instances", false, "leave the apps' instances running when the daemon stops, for the next daemon to adopt (they always survive a crash)")
	f.Int64Var(&c.Logs.FileSize, "log-file-size", logs.DefaultFileSize, "an app's log file is closed and a new one begun at this size, in bytes")
	f.Int64Var(&c.Logs.Quota, "log-quota", logs.DefaultQuota, "all log files of one app together stay under this size, in bytes; the oldest go first")
	f.IntVar(&retentionDays, "log-retention-days", int(logs.DefaultRetention/(24*time.Hour)), "closed log files older than this many days are removed")
	f.DurationVar(&c.LogHeartbeat, "log-heartbeat", api.DefaultHeartbeat, "a followed log stream gets a heartbeat line after this long without one")
	f.StringVar(&trusted, "trusted-proxies", "", "comma-separated `CIDRs` of proxies in front of Slipway whose X-Forwarded-For is believed, like 10.0.0.0/8")
	f.StringVar(&c.HTTPSListen, "https-listen", "", "the router's HTTPS address, like :8443 (needs --tls-cert/--tls-key, --tls-cert-dir, or an ACME CA: --acme-email, --acme-directory or --acme-hosts)")
	f.StringVar(&c.TLS.CertFile, "tls-cert", "", "the router's default certificate `FILE` (PEM), for hosts no other certificate names")
	f.StringVar(&c.TLS.KeyFile, "tls-key", "", "the key `FILE` of --tls-cert")
	f.StringVar(&c.TLS.CertDir, "tls-cert-dir", "", "a `DIR` of more certificates, NAME.crt with NAME.key, each used for the host names it lists")
	f.StringSliceVar(&c.TLS.ACMEHosts, "acme-hosts", nil, "host names to get certificates for from an ACME CA (Let's Encrypt), comma-separated")
	f.StringVar(&c.TLS.ACMEEmail, "acme-email", "", "the contact address given to the ACME CA; any --acme-* flag turns ACME on, for --acme-hosts and the custom domains added with 'slipway domains add --acme'")
	f.StringVar(&c.TLS.ACMEDirectory, "acme-directory", "", "the ACME CA's directory `URL` (default Let's Encrypt)")
	f.StringVar(&c.APITLSCert, "api-tls-cert", "", "a certificate `FILE` (PEM) to serve the API over TLS")
	f.StringVar(&c.APITLSKey, "api-tls-key", "", "the key `FILE` of --api-tls-cert")
	f.StringVar(&c.PublicURL, "public-url", "", "the API's `URL` as clients reach it, like https://deploy.example.com:7443, when that is not the listen address (a proxy, a name); the App Service deploy endpoints' URLs and publish profiles use it (default: the scheme and host each request names)")
	f.StringVar(&c.Isolation, "isolation", string(runtime.IsolationAuto), "how apps are kept from the daemon's files and each other's: user (each app runs as a user of its own; needs root), landlock (the daemon's user, confined by Landlock), none, or auto (user as root, landlock otherwise)")
	f.Uint32Var(&c.AppUIDBase, "app-uid-base", deploy.DefaultAppUIDBase, "the first uid given to an app under --isolation=user; apps take uids from it on, one each, with no passwd entry")
	f.StringSliceVar(&c.JDKs, "jdk", nil, "the `DIR` of a JDK (it holds bin/java and release) that apps may ask for by its Java version, besides those under "+runtime.DefaultJDKDir+" (repeatable; of two JDKs of one Java version, the first named wins)")
	f.StringVar(&c.Restore, "restore", "", "restore the backup `FILE` ('slipway admin backup') into the data directory, which must be empty, then start")
	f.StringVar(&c.Cluster.NodeName, "node-name", "", "this node's name in its cluster (default the host name)")
	f.StringVar(&c.Cluster.Advertise, "advertise-address", "", "the address other nodes reach this one at (default the host of --api-listen); the peer port opens there")
	f.IntVar(&c.Cluster.PeerPort, "peer-port", cluster.DefaultPeerPort, "the peer link's port (etcd and node to node, mutual TLS with the cluster CA), opened once the node has peers")
	f.StringArrayVar(&c.Cluster.Labels, "label", nil, "a `KEY=VALUE` label of this node, which an app's placement can ask for (repeatable)")
	f.StringVar(&c.Cluster.Join, "join", "", "join the cluster of the node whose API is at `URL`, like http://10.0.0.5:7070 (with --join-token; the data directory must be empty)")
	f.StringVar(&c.Cluster.JoinToken, "join-token", "", "a join token from 'slipway admin join-token' on a node of the cluster")
	f.StringSliceVar(&c.Cluster.Etcd.Endpoints, "etcd-endpoints", nil, "keep the state in the external etcd cluster at these client `URLs` (comma-separated, like https://10.0.0.5:2379), instead of the embedded member; every node of the cluster names the same")
	f.StringVar(&c.Cluster.Etcd.CAFile, "etcd-cacert", "", "the CA `FILE` (PEM) to check --etcd-endpoints' certificates by (default the system's)")
	f.StringVar(&c.Cluster.Etcd.CertFile, "etcd-cert", "", "the client certificate `FILE` (PEM) for --etcd-endpoints")
	f.StringVar(&c.Cluster.Etcd.KeyFile, "etcd-key", "", "the key `FILE` of --etcd-cert")
	f.BoolVar(&c.Debug, "debug", false, "log more, embedded etcd's own logs included")
	return cmd
}
