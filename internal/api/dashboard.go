package api

import (
	"net/http"
)

// The dashboard (internal/web) is a client of the same operations as the
// API, not a second implementation: it finds a caller's credential with
// Authenticate, decides what the caller may do with Authorize, calls the
// exported methods that the API's handlers call (Apps, Status, …) or the
// deploy manager's operations as the handlers do, and says what went
// wrong with ErrorAnswer, so a page says what the API would.

// Scope is who may call an operation; the dashboard's actions take the
// scope of the API route that does the same.
type Scope = scope

// The scopes a dashboard action may need (see scope).
const (
	ScopeApp    = scopeApp
	ScopeDeploy = scopeDeploy
	ScopeAdmin  = scopeAdmin
)

// Authorize is the API's decision for p calling an operation of scope sc
// about app, in request r: what p's credential may touch (403, with the
// API's message), then, for ScopeDeploy, the app's deploy access rules
// for r's client.
func (s *Server) Authorize(r *http.Request, p Principal, sc Scope, app string) error {
	return s.authorize(r, p, sc, app)
}

// MaxUpload is the bound of an upload (--max-upload).
func (s *Server) MaxUpload() int64 { return s.opts.Artifacts.MaxUpload() }
