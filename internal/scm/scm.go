// Package scm serves the App Service "SCM" (Kudu) deploy endpoints that
// existing pipelines call — the GitHub Action azure/webapps-deploy, the
// Azure Pipelines tasks, the Azure CLI, curl — and makes the publish
// profiles they read. It is a thin adapter: deployments go through
// deploy.Manager like any other, settings changes through its
// ChangeSettings, logs come from the logs hub. ../shared/APPSERVICE.md is
// the contract: what those clients send and need back.
//
// Each app's SCM site lives on the API listener under /scm/APP, every
// route both as /scm/APP/api/X and as /scm/APP/X, as Kudu answers both.
// The API mounts the routes behind its own checks (token, then what it
// may touch, then the app's deploy access rules), as deploy endpoints.
package scm

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/store"
)

// Sentinel errors; the API maps them to a status.
var (
	// ErrUnsupported is a call or parameter of Kudu's that Slipway does
	// not serve (400); the message says what to send instead.
	ErrUnsupported = errors.New("not supported by Slipway")
	// ErrBadRequest is a malformed parameter or body (400).
	ErrBadRequest = errors.New("bad request")
	// ErrNotFinished is a synchronous call whose deployment was still
	// running when the daemon stopped (503): follow it at its URL.
	ErrNotFinished = errors.New("the deployment has not finished")
)

// busyText is Kudu's answer to a deploy while another runs; clients show
// it, and the GitHub Action retries on its 409.
const busyText = "There is a deployment currently in progress. Please try again when it completes."

// busyError is a *store.LockedError told in Kudu's words.
type busyError struct{ locked error }

func (e *busyError) Error() string { return busyText }
func (e *busyError) Unwrap() error { return e.locked }

// kudu turns a running deployment's *store.LockedError into Kudu's
// answer; other errors pass as they are.
func kudu(err error) error {
	var locked *store.LockedError
	if errors.As(err, &locked) {
		return &busyError{locked: err}
	}
	return err
}

// Options configures a Site.
type Options struct {
	Store   *store.Store
	Deploys *deploy.Manager
	Logs    *logs.Hub
	// MaxUpload is the bound on an upload, the native API's (--max-upload).
	MaxUpload int64
	// PublicURL is the API's URL as clients reach it, like
	// https://deploy.example.com:7443, when that is not the address they
	// call (a proxy in front); "" means the scheme and Host of each
	// request. The URLs the site hands out (Location, url, log_url, the
	// publish profile's) start with it.
	PublicURL string
	Logger    *slog.Logger
}

// Site serves every app's SCM site.
type Site struct {
	opts   Options
	logger *slog.Logger
}

// New returns the SCM sites' handlers; mount them with Routes.
func New(opts Options) *Site {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Site{opts: opts, logger: opts.Logger}
}

// Handler is a route's handler; it returns its error for the API to
// render.
type Handler func(w http.ResponseWriter, r *http.Request) error

// Routes calls handle with each route's pattern, {app} naming the app,
// and its handler. Every handler is a deploy endpoint of that app.
func (s *Site) Routes(handle func(pattern string, h Handler)) {
	for _, rt := range []struct {
		method, path string
		h            Handler
	}{
		{"POST", "publish", s.publish},
		{"PUT", "publish", s.publish},
		{"POST", "zipdeploy", s.zipDeploy},
		{"PUT", "zipdeploy", s.zipDeploy},
		{"POST", "wardeploy", s.warDeploy},
		{"GET", "deployments", s.listDeployments},
		{"GET", "deployments/latest", s.latestDeployment},
		{"GET", "deployments/{id}", s.showDeployment},
		{"PUT", "deployments/{id}", s.putRecord},
		{"GET", "deployments/{id}/log", s.deploymentLog},
		{"GET", "settings", s.showSettings},
		{"POST", "settings", s.setSettings},
		{"DELETE", "settings/{key}", s.deleteSetting},
		{"GET", "logstream", s.logStream},
		{"GET", "logs/docker/zip", s.logsZip},
		{"GET", "diagnostics/runtime", s.runtime},
		{"GET", "isdeploying", s.isDeploying},
	} {
		handle(rt.method+" /scm/{app}/api/"+rt.path, rt.h)
		handle(rt.method+" /scm/{app}/"+rt.path, rt.h)
	}
}

// URL is the SCM site of app as the client of r reaches it, the base of
// every URL the site hands out: PublicURL, or the request's scheme and
// Host, then /scm/APP.
func (s *Site) URL(r *http.Request, app string) string {
	base := s.opts.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return strings.TrimRight(base, "/") + "/scm/" + url.PathEscape(app)
}

// kuduTime is how Kudu writes a time in a query: ISO 8601, UTC.
const kuduTime = time.RFC3339Nano
