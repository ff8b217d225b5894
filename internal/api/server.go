// Package api is the control API: JSON under /api/v1.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/scm"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// Options configures a Server.
type Options struct {
	Store     *store.Store
	Deploys   *deploy.Manager
	Artifacts *artifact.Store
	Logs      *logs.Hub
	Logger    *slog.Logger
	// Metrics is served at /metrics in the Prometheus text format.
	Metrics prometheus.Gatherer
	// Heartbeat is how long a followed log stream stays silent before a
	// heartbeat line (DefaultHeartbeat when 0).
	Heartbeat time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// applying an app's deploy access rules.
	TrustedProxies []netip.Prefix
	// HTTPSListener is true when the router serves HTTPS itself; an
	// app's https-only policy warns without it and without a trusted
	// proxy.
	HTTPSListener bool
	// AdminTokenFile is where the admin token is kept for the operator on
	// the daemon's machine; a rotated token is written there too.
	AdminTokenFile string
	// SCM serves each app's App Service deploy endpoints under /scm/APP,
	// as deploy endpoints of the app; nil for none.
	SCM *scm.Site
	// Listeners are the router's, for the URLs an app is shown with.
	Listeners Listeners
	// Operator is the daemon itself: its version, upgrades and backups.
	Operator Operator
	// Cluster is the node's part in its cluster.
	Cluster Cluster
	// Leases are the apps' named leases; nil for none.
	Leases *lease.Service
}

// Listeners describe the router's listeners, for an app's URLs.
type Listeners struct {
	// HTTPPort is the plain HTTP listener's port; empty means 80.
	HTTPPort string
	// HTTPSPort is the HTTPS listener's port; empty when there is none.
	HTTPSPort string
	// HasCertificate reports whether the HTTPS listener has a certificate
	// for a host name (an app's https URL is shown only then); nil means
	// it has one for every name.
	HasCertificate func(host string) bool
}

// urls are the URLs of an app served at hosts: http, and https where the
// HTTPS listener has a certificate for the host; the port only when it
// is not the scheme's default.
func (l Listeners) urls(hosts []string) []string {
	out := make([]string, 0, 2*len(hosts))
	for _, h := range hosts {
		out = append(out, "http://"+withPort(h, l.HTTPPort, "80"))
	}
	if l.HTTPSPort == "" {
		return out
	}
	for _, h := range hosts {
		if l.HasCertificate == nil || l.HasCertificate(h) {
			out = append(out, "https://"+withPort(h, l.HTTPSPort, "443"))
		}
	}
	return out
}

func withPort(host, port, def string) string {
	if port == "" || port == def {
		return host
	}
	return host + ":" + port
}

// Server serves the control API.
type Server struct {
	opts   Options
	logger *slog.Logger
	mux    *http.ServeMux
}

// New returns the API handler.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	s := &Server{opts: opts, logger: opts.Logger, mux: http.NewServeMux()}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.route("GET /healthz", scopePublic, func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.WriteString(w, "ok\n")
		return err
	})
	if s.opts.Metrics != nil {
		metrics := promhttp.HandlerFor(s.opts.Metrics, promhttp.HandlerOpts{})
		s.route("GET /metrics", scopeAdmin, func(w http.ResponseWriter, r *http.Request) error {
			metrics.ServeHTTP(w, r)
			return nil
		})
	}
	s.route("GET /api/v1/whoami", scopeAny, s.whoami)
	s.route("POST /api/v1/admin/token", scopeAdmin, s.rotateAdminToken)
	if s.opts.Operator != nil {
		s.route("GET /api/v1/version", scopeAny, s.version)
		s.route("POST /api/v1/admin/upgrade", scopeAdmin, s.upgrade)
		s.route("GET /api/v1/admin/backup", scopeAdmin, s.backup)
	}
	s.clusterRoutes()
	s.route("GET /api/v1/apps", scopeAdmin, s.listApps)
	s.route("POST /api/v1/apps", scopeAdmin, s.createApp)
	s.route("GET /api/v1/apps/{app}", scopeAdmin, s.showApp)
	s.route("DELETE /api/v1/apps/{app}", scopeAdmin, s.deleteApp)
	// The deploy endpoints: an app's credential may use them, from where
	// the app's deploy access rules allow.
	s.route("POST /api/v1/apps/{app}/deployments", scopeDeploy, s.createDeployment)
	s.route("GET /api/v1/apps/{app}/deployments", scopeDeploy, s.listDeployments)
	s.route("GET /api/v1/apps/{app}/deployments/{id}", scopeDeploy, s.showDeployment)
	s.route("GET /api/v1/apps/{app}/deployments/{id}/events", scopeDeploy, s.followDeployment)
	s.route("POST /api/v1/apps/{app}/deployments/current/cancel", scopeDeploy, s.cancelDeployment)
	s.route("GET /api/v1/apps/{app}/status", scopeApp, s.status)
	s.route("GET /api/v1/apps/{app}/logs", scopeApp, s.streamLogs)
	s.route("GET /api/v1/apps/{app}/logs/download", scopeApp, s.downloadLogs)
	s.route("GET /api/v1/apps/{app}/leases", scopeApp, s.listLeases)
	s.route("GET /api/v1/apps/{app}/releases", scopeAdmin, s.listReleases)
	s.route("GET /api/v1/apps/{app}/settings", scopeAdmin, s.showSettings)
	s.route("PATCH /api/v1/apps/{app}/settings", scopeAdmin, s.changeSettings)
	s.route("POST /api/v1/apps/{app}/scale", scopeAdmin, s.scale)
	s.route("POST /api/v1/apps/{app}/restart", scopeAdmin, s.restart)
	s.route("POST /api/v1/apps/{app}/rollback", scopeAdmin, s.rollback)
	s.route("GET /api/v1/apps/{app}/credentials", scopeAdmin, s.listCredentials)
	s.route("POST /api/v1/apps/{app}/credentials", scopeAdmin, s.createCredential)
	s.route("DELETE /api/v1/apps/{app}/credentials/{credential}", scopeAdmin, s.revokeCredential)
	s.route("GET /api/v1/apps/{app}/domains", scopeAdmin, s.listDomains)
	s.route("POST /api/v1/apps/{app}/domains", scopeAdmin, s.addDomain)
	s.route("DELETE /api/v1/apps/{app}/domains/{name}", scopeAdmin, s.removeDomain)
	s.route("GET /api/v1/apps/{app}/access", scopeAdmin, s.showPolicy)
	s.route("PATCH /api/v1/apps/{app}/access", scopeAdmin, s.changePolicy)
	s.route("POST /api/v1/apps/{app}/access/rules", scopeAdmin, s.addRule)
	s.route("DELETE /api/v1/apps/{app}/access/rules/{scope}/{priority}", scopeAdmin, s.removeRule)
	if s.opts.SCM != nil {
		// App Service clients print an error answer's body as it is: text.
		s.opts.SCM.Routes(func(pattern string, h scm.Handler) {
			s.mux.HandleFunc(pattern, s.adapt(s.guard(scopeDeploy, handler(h)), writeTextError))
		})
	}
	s.route("/", scopePublic, func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no API route %s %s; the API lives under /api/v1", r.Method, r.URL.Path)
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// app adds to a the state that lives outside its record: hosts and
// URLs, instances, the running deployment.
func (s *Server) app(ctx context.Context, a store.App) App {
	holder, _ := s.opts.Store.LockHolder(ctx, a.Name)
	hosts := s.opts.Deploys.Hosts(a.Name)
	return appOf(a, hosts, s.opts.Listeners.urls(hosts), instancesOf(s.opts.Deploys.Instances(a.Name)), holder)
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) error {
	out, err := s.Apps(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Apps lists every app, as GET /api/v1/apps answers.
func (s *Server) Apps(ctx context.Context) ([]App, error) {
	apps, err := s.opts.Store.Apps(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]App, 0, len(apps))
	for _, a := range apps {
		out = append(out, s.app(ctx, a))
	}
	return out, nil
}

// CreateAppRequest is the body of POST /api/v1/apps.
type CreateAppRequest struct {
	Name     string            `json:"name"`
	Settings settings.Settings `json:"settings"`
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) error {
	var req CreateAppRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	a, err := s.CreateApp(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

// CreateApp creates an app, as POST /api/v1/apps does.
func (s *Server) CreateApp(ctx context.Context, req CreateAppRequest) (App, error) {
	a, err := s.opts.Deploys.CreateApp(ctx, req.Name, req.Settings)
	if errors.Is(err, store.ErrExists) {
		return App{}, errorf(http.StatusConflict, "an app named %s already exists", req.Name)
	}
	if err != nil {
		return App{}, err
	}
	return s.app(ctx, a), nil
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) { // an empty body is an empty request
		return errorf(http.StatusBadRequest, "reading the JSON request body: %v", err)
	}
	return nil
}

func (s *Server) showApp(w http.ResponseWriter, r *http.Request) error {
	out, err := s.App(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// App is one app with its instances, hosts and URLs and how its live
// release runs, as GET /api/v1/apps/{app} answers.
func (s *Server) App(ctx context.Context, name string) (App, error) {
	a, err := s.opts.Store.App(ctx, name)
	if err != nil {
		return App{}, err
	}
	out := s.app(ctx, a)
	if out.Runtime, err = s.runtime(ctx, a); err != nil {
		return App{}, err
	}
	return out, nil
}

// runtime is how a's live release runs on this node; nil before its
// first release.
func (s *Server) runtime(ctx context.Context, a store.App) (*Runtime, error) {
	if a.CurrentRelease == 0 {
		return nil, nil
	}
	rel, err := s.opts.Store.Release(ctx, a.Name, a.CurrentRelease)
	if err != nil {
		return nil, err
	}
	return runtimeOf(s.opts.Deploys.RuntimeOf(rel)), nil
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Deploys.DeleteApp(r.Context(), r.PathValue("app")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// createDeployment takes the request body as the artifact, streamed to disk.
// Query: filename, message, author, queue, wait (see answerChange).
func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request) error {
	limit := s.opts.Artifacts.MaxUpload()
	if r.ContentLength > limit {
		return fmt.Errorf("%w: %d bytes sent, the limit is %d (--max-upload)", artifact.ErrTooLarge, r.ContentLength, limit)
	}
	q := r.URL.Query()
	d, err := s.opts.Deploys.Deploy(r.Context(), deploy.DeployRequest{
		App: r.PathValue("app"), Artifact: r.Body, FileName: q.Get("filename"), Size: r.ContentLength, Meta: meta(r),
	})
	if err != nil {
		return err
	}
	return s.answerChange(w, r, d, deploymentBody)
}

// deploymentBody is the answer to a change that answers with its
// deployment: the deployment.
func deploymentBody(d store.Deployment) any { return deploymentOf(d) }

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) error {
	out, err := s.Deployments(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Deployments lists app's deployments, oldest first, as GET
// …/deployments answers.
func (s *Server) Deployments(ctx context.Context, app string) ([]Deployment, error) {
	if _, err := s.opts.Store.App(ctx, app); err != nil {
		return nil, err
	}
	deps, err := s.opts.Store.Deployments(ctx, app)
	if err != nil {
		return nil, err
	}
	return deploymentsOf(deps), nil
}

func deploymentID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		return 0, errorf(http.StatusBadRequest, "deployment id %q is not a positive number", r.PathValue("id"))
	}
	return id, nil
}

func (s *Server) showDeployment(w http.ResponseWriter, r *http.Request) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	d, err := s.Deployment(r.Context(), r.PathValue("app"), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// Deployment is one deployment of app with its events.
func (s *Server) Deployment(ctx context.Context, app string, id int) (Deployment, error) {
	d, err := s.opts.Store.Deployment(ctx, app, id)
	if err != nil {
		return Deployment{}, err
	}
	return deploymentOf(d), nil
}

// followDeployment streams the deployment's events as they happen (see
// FollowDeployment).
func (s *Server) followDeployment(w http.ResponseWriter, r *http.Request) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	return s.FollowDeployment(w, r, r.PathValue("app"), id)
}

// FollowDeployment streams deployment id of app as it happens, one JSON
// object per line (server-sent events for a client that accepts
// text/event-stream), ending with the finished deployment; see
// streamDeployment.
func (s *Server) FollowDeployment(w http.ResponseWriter, r *http.Request, app string, id int) error {
	if _, err := s.opts.Store.Deployment(r.Context(), app, id); err != nil {
		return err
	}
	s.streamDeployment(w, r, app, id, nil)
	return nil
}

func (s *Server) cancelDeployment(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Deploys.Cancel(r.PathValue("app")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) error {
	out, err := s.Releases(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Releases lists app's releases, v1 first, secrets masked.
func (s *Server) Releases(ctx context.Context, app string) ([]Release, error) {
	if _, err := s.opts.Store.App(ctx, app); err != nil {
		return nil, err
	}
	rels, err := s.opts.Store.Releases(ctx, app)
	if err != nil {
		return nil, err
	}
	out := make([]Release, 0, len(rels))
	for _, rel := range rels {
		out = append(out, releaseOf(rel))
	}
	return out, nil
}
