// Package web is the dashboard: server-rendered pages (html/template,
// embed) with live parts over server-sent events and a little plain
// JavaScript, served by the daemon on the API listener.
//
// It is a client of the same operations as the API, not a second
// implementation: it signs people in with the API's tokens
// (api.Server.Authenticate), lets them do what the API would let the
// token do (api.Server.Authorize, with the scope of the API route that
// does the same), calls the operations the API's handlers call, and shows
// an error as the API says it (api.Server.ErrorAnswer).
package web

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/deploy"
)

// Options configures a Dashboard.
type Options struct {
	// API serves everything the dashboard does not: /api/, /healthz,
	// /metrics and /scm/. Its operations are the dashboard's.
	API     *api.Server
	Deploys *deploy.Manager
	// Cluster is the node's cluster, whose coordinator carries out the
	// changes; nil in tests of a node alone.
	Cluster Cluster
	Logger  *slog.Logger
	// Secure marks the session cookie Secure; a request that came over
	// TLS gets a Secure cookie anyway.
	Secure bool
	// SessionTTL is how long a session lasts from its sign-in
	// (DefaultSessionTTL when 0).
	SessionTTL time.Duration
	// LiveEvery is how often live parts of a page are sent again
	// (DefaultLiveEvery when 0).
	LiveEvery time.Duration
	// now is the clock, for tests; time.Now when nil.
	now func() time.Time
}

// Defaults of Options.
const (
	DefaultSessionTTL = 12 * time.Hour
	DefaultLiveEvery  = 2 * time.Second
)

// Dashboard serves the dashboard at / and passes the API's paths on.
type Dashboard struct {
	opts     Options
	logger   *slog.Logger
	mux      *http.ServeMux
	sessions *sessions
	pages    *pages
}

// New returns the dashboard, in front of opts.API.
func New(opts Options) *Dashboard {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.LiveEvery == 0 {
		opts.LiveEvery = DefaultLiveEvery
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	d := &Dashboard{opts: opts, logger: opts.Logger, mux: http.NewServeMux(),
		sessions: newSessions(opts.SessionTTL, opts.now), pages: loadPages()}
	d.routes()
	return d
}

// apiPaths are the paths the API keeps; everything else is the
// dashboard's.
var apiPaths = []string{"/api/", "/scm/"}

func isAPI(path string) bool {
	if path == "/healthz" || path == "/metrics" || path == "/api" || path == "/scm" {
		return true
	}
	for _, p := range apiPaths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isAPI(r.URL.Path) {
		d.opts.API.ServeHTTP(w, r)
		return
	}
	h := w.Header()
	// No inline script, no plugin, no framing, no base or form target
	// elsewhere: what an app prints can never run here, and no other site
	// can frame the dashboard to click through it.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) routes() {
	d.mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles()))
	d.mux.HandleFunc("GET /signin", d.signinPage)
	d.mux.HandleFunc("POST /signin", d.signin)
	d.handle("POST /signout", scopeSession, d.signout)
	d.handle("GET /{$}", scopeSession, d.home)
	d.handle("GET /live", api.ScopeAdmin, d.appsLive)
	d.handle("POST /apps", api.ScopeAdmin, d.createApp)
	d.handle("GET /apps/{app}", api.ScopeApp, d.overview)
	d.handle("GET /apps/{app}/live", api.ScopeApp, d.overviewLive)
	d.handle("POST /apps/{app}/delete", api.ScopeAdmin, d.deleteApp)
	d.handle("GET /apps/{app}/deploy", api.ScopeDeploy, d.deployPage)
	d.handleUpload("POST /apps/{app}/deploy", api.ScopeDeploy, d.upload)
	d.handle("POST /apps/{app}/cancel", api.ScopeDeploy, d.cancel)
	d.handle("GET /apps/{app}/deployments", api.ScopeDeploy, d.history)
	d.handle("GET /apps/{app}/deployments/{id}", api.ScopeDeploy, d.deployment)
	d.handle("GET /apps/{app}/deployments/{id}/events", api.ScopeDeploy, d.deploymentEvents)
	d.handle("GET /apps/{app}/rollback", api.ScopeAdmin, d.rollbackPage)
	d.handle("POST /apps/{app}/rollback", api.ScopeAdmin, d.rollback)
	d.handle("GET /apps/{app}/settings", api.ScopeAdmin, d.settingsPage)
	d.handle("POST /apps/{app}/settings", api.ScopeAdmin, d.saveSettings)
	d.handle("POST /apps/{app}/scale", api.ScopeAdmin, d.scale)
	d.handle("POST /apps/{app}/restart", api.ScopeAdmin, d.restart)
	d.handle("GET /apps/{app}/logs", api.ScopeApp, d.logsPage)
	d.handle("GET /apps/{app}/logs/stream", api.ScopeApp, d.logStream)
	d.handle("GET /apps/{app}/logs/download", api.ScopeApp, d.logDownload)
	d.handle("GET /apps/{app}/access", api.ScopeAdmin, d.accessPage)
	d.handle("POST /apps/{app}/access/rules", api.ScopeAdmin, d.addRule)
	d.handle("POST /apps/{app}/access/rules/remove", api.ScopeAdmin, d.removeRule)
	d.handle("POST /apps/{app}/access/https-only", api.ScopeAdmin, d.httpsOnly)
	d.handle("POST /apps/{app}/domains", api.ScopeAdmin, d.addDomain)
	d.handle("POST /apps/{app}/domains/remove", api.ScopeAdmin, d.removeDomain)
	d.handle("POST /apps/{app}/credentials", api.ScopeAdmin, d.createCredential)
	d.handle("POST /apps/{app}/credentials/revoke", api.ScopeAdmin, d.revokeCredential)
	d.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.failMsg(w, r, d.sessions.get(r), http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
}
