// Package api is the control API: JSON under /api/v1.
package api

import (
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
	// AdminTokenFile is where the admin token is kept for the operator on
	// the daemon's machine; a rotated token is written there too.
	AdminTokenFile string
	// Leases are the apps' named leases; nil for none.
	Leases *lease.Service
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
	s.route("GET /api/v1/apps/{app}/access", scopeAdmin, s.showPolicy)
	s.route("PATCH /api/v1/apps/{app}/access", scopeAdmin, s.changePolicy)
	s.route("POST /api/v1/apps/{app}/access/rules", scopeAdmin, s.addRule)
	s.route("DELETE /api/v1/apps/{app}/access/rules/{scope}/{priority}", scopeAdmin, s.removeRule)
	s.route("/", scopePublic, func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no API route %s %s; the API lives under /api/v1", r.Method, r.URL.Path)
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// app adds to a the state that lives outside its record: hosts,
// instances, the running deployment.
func (s *Server) app(r *http.Request, a store.App) App {
	holder, _ := s.opts.Store.LockHolder(r.Context(), a.Name)
	return appOf(a, s.opts.Deploys.Hosts(a.Name), instancesOf(s.opts.Deploys.Instances(a.Name)), holder)
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) error {
	apps, err := s.opts.Store.Apps(r.Context())
	if err != nil {
		return err
	}
	out := make([]App, 0, len(apps))
	for _, a := range apps {
		out = append(out, s.app(r, a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
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
	a, err := s.opts.Deploys.CreateApp(r.Context(), req.Name, req.Settings)
	if errors.Is(err, store.ErrExists) {
		return errorf(http.StatusConflict, "an app named %s already exists", req.Name)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.app(r, a))
	return nil
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
	a, err := s.opts.Store.App(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.app(r, a))
	return nil
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Deploys.DeleteApp(r.Context(), r.PathValue("app")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// createDeployment takes the request body as the artifact, streamed to disk.
// Query: filename, message, author.
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
	w.Header().Set("Location", fmt.Sprintf("/api/v1/apps/%s/deployments/%d", d.App, d.ID))
	writeJSON(w, http.StatusAccepted, deploymentOf(d))
	return nil
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	deps, err := s.opts.Store.Deployments(r.Context(), app)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deploymentsOf(deps))
	return nil
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
	d, err := s.opts.Store.Deployment(r.Context(), r.PathValue("app"), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deploymentOf(d))
	return nil
}

// FollowLine is one line of a deployment's event stream (NDJSON): an event,
// or, last, the finished deployment.
type FollowLine struct {
	Event      *Event      `json:"event,omitempty"`
	Deployment *Deployment `json:"deployment,omitempty"`
}

// followDeployment streams the deployment's events as they happen, one JSON
// object per line, ending with the finished deployment.
func (s *Server) followDeployment(w http.ResponseWriter, r *http.Request) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	app := r.PathValue("app")
	if _, err := s.opts.Store.Deployment(r.Context(), app, id); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher := http.NewResponseController(w)
	sent := 0
	err = s.opts.Store.WatchDeployment(r.Context(), app, id, func(d store.Deployment) bool {
		// Events are only appended. (A log over store.MaxEvents drops old
		// progress messages; a follower then misses as many new ones, which
		// takes a warmup of hours at one message per 15 s.)
		for _, e := range d.Events[min(sent, len(d.Events)):] {
			enc.Encode(FollowLine{Event: new(eventOf(e))})
		}
		sent = len(d.Events)
		if d.Done() {
			enc.Encode(FollowLine{Deployment: new(deploymentOf(d))})
		}
		flusher.Flush()
		return !d.Done()
	})
	if err != nil && r.Context().Err() == nil {
		s.logger.Error("following deployment", "app", app, "deployment", id, "err", err)
	}
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
	app := r.PathValue("app")
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	rels, err := s.opts.Store.Releases(r.Context(), app)
	if err != nil {
		return err
	}
	out := make([]Release, 0, len(rels))
	for _, rel := range rels {
		out = append(out, releaseOf(rel))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
