package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/slipway-dev/slipway/internal/artifact"
	"github.com/slipway-dev/slipway/internal/cluster"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/logs"
	"github.com/slipway-dev/slipway/internal/runtime"
	"github.com/slipway-dev/slipway/internal/scm"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// Error is the JSON body of every error answer.
type Error struct {
	Error string `json:"error"`
	// Deployment names the running deployment on a 409.
	Deployment *Deployment `json:"deployment,omitempty"`
	// Lease is the lease another instance holds, on the lease endpoint's
	// 409.
	Lease *Lease `json:"lease,omitempty"`
}

// httpError is an error with the status to answer it with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to its HTTP status. It is the one place that does.
func statusOf(err error) int {
	var he *httpError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, lease.ErrUnknownSecret):
		// The lease endpoint's secret, its only credential.
		return http.StatusUnauthorized
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrLeaseHeld), errors.Is(err, lease.ErrStopping), errors.Is(err, lease.ErrRunnerName),
		errors.Is(err, store.ErrTooManyLeases):
		// The lease is not the caller's to take now; another instance's,
		// the platform's, or one too many.
		return http.StatusConflict
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrLocked), errors.Is(err, deploy.ErrNotRunning),
		errors.Is(err, deploy.ErrNothingLive), errors.Is(err, deploy.ErrArtifactGone), errors.Is(err, ErrUpgradeBusy),
		// A domain another app has (the message names it), or one too many.
		errors.Is(err, store.ErrTooManyDomains):
		return http.StatusConflict
	case errors.Is(err, runtime.ErrNoJDK), errors.Is(err, runtime.ErrNoTomcat):
		// The node lacks what the app asks for; the same request works
		// once it is installed.
		return http.StatusConflict
	case errors.Is(err, deploy.ErrNoRelease):
		return http.StatusNotFound
	case errors.Is(err, logs.ErrTooManyReaders):
		// The same request works once other streams of the app close.
		return http.StatusTooManyRequests
	case errors.Is(err, artifact.ErrTooLarge), errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, cluster.ErrBadToken):
		return http.StatusUnauthorized
	case errors.Is(err, cluster.ErrNameTaken), errors.Is(err, cluster.ErrNodeAlive), errors.Is(err, cluster.ErrSelf):
		return http.StatusConflict
	case errors.Is(err, cluster.ErrNoNode):
		return http.StatusNotFound
	case errors.Is(err, cluster.ErrBadJoin), errors.Is(err, cluster.ErrBadCertificate), errors.Is(err, cluster.ErrNoAddress), errors.Is(err, store.ErrExternal):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNoQuorum), errors.Is(err, cluster.ErrNoCoordinator):
		// This node is cut off from the majority: another node, or this
		// one later, takes the same request.
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrStopped):
		// The store is gone until the daemon restarts; the apps still serve.
		return http.StatusServiceUnavailable
	case errors.Is(err, artifact.ErrNoSpace), errors.Is(err, store.ErrFull):
		// The server's disk, not the request, is at fault; the same upload
		// works once space is freed (RFC 4918 11.5).
		return http.StatusInsufficientStorage
	case errors.Is(err, scm.ErrNotFinished):
		// The daemon stopped while a synchronous deploy waited; the
		// deployment is followed at its URL once the daemon is back.
		return http.StatusServiceUnavailable
	case errors.Is(err, settings.ErrInvalidName), errors.Is(err, settings.ErrInvalidSettings),
		errors.Is(err, scm.ErrUnsupported), errors.Is(err, scm.ErrBadRequest),
		errors.Is(err, artifact.ErrEmpty), errors.Is(err, artifact.ErrCorrupt),
		errors.Is(err, artifact.ErrUnsafe), errors.Is(err, artifact.ErrBadName), errors.Is(err, deploy.ErrNoCommand), errors.Is(err, deploy.ErrBadMeta),
		errors.Is(err, settings.ErrInvalidDomain), errors.Is(err, deploy.ErrNoACME),
		errors.Is(err, artifact.ErrJavax), errors.Is(err, runtime.ErrStack),
		errors.Is(err, settings.ErrInvalidLeaseName), errors.Is(err, lease.ErrBadTTL), errors.Is(err, store.ErrBadLease):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// outcomeStatus is the status of an answer that waited for a deployment
// to end (wait=1), by how it ended. Anything but success is a 4xx, so a
// pipeline (curl --fail) fails on it, and a client that retries a 5xx by
// itself (curl --retry does) does not send again what would end the same.
func outcomeStatus(state string) int {
	switch state {
	case store.StateSucceeded:
		return http.StatusOK
	case store.StateCancelled:
		// Someone ended it (a cancel, a daemon that stopped) before it
		// switched traffic: the change met another, and can be sent again.
		return http.StatusConflict
	default:
		// Failed: the request was good, but what it asked to take live
		// could not go live (it exited, never answered, …); the body
		// says why.
		return http.StatusUnprocessableEntity
	}
}

// handler is an API handler that returns its error instead of writing it.
type handler func(w http.ResponseWriter, r *http.Request) error

// adapt renders a returned error with write, after the headers every
// error answer gets.
func (s *Server) adapt(h handler, write errorWriter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status := statusOf(err)
		if status == http.StatusInternalServerError {
			s.logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		if status == http.StatusUnauthorized {
			// App Service clients send basic auth (RFC 7235 section 4.1).
			w.Header()["Www-Authenticate"] = []string{"Bearer", `Basic realm="slipway", charset="UTF-8"`}
		}
		write(s, w, r, status, err)
	}
}

// errorWriter writes an error answer.
type errorWriter func(s *Server, w http.ResponseWriter, r *http.Request, status int, err error)

// writeJSONError writes an Error (see errorBody).
func writeJSONError(s *Server, w http.ResponseWriter, r *http.Request, status int, err error) {
	writeJSON(w, status, s.errorBody(r.Context(), err))
}

// errorBody is the answer to err; a 409 of a running deployment names it.
func (s *Server) errorBody(ctx context.Context, err error) Error {
	body := Error{Error: err.Error()}
	var locked *store.LockedError
	if errors.As(err, &locked) {
		if d, derr := s.opts.Store.Deployment(ctx, locked.App, locked.Deployment); derr == nil {
			body.Deployment = new(deploymentOf(d))
			body.Error = fmt.Sprintf("deployment %d of app %s is running (started %s); wait for it to finish or cancel it", d.ID, d.App, d.Started.Format("15:04:05 MST"))
		}
	}
	return body
}

// ErrorAnswer is the status and the message the API answers err with,
// for a client of the same operations (the dashboard) to say the same.
// An unexpected error (500) is logged here, as the API logs it.
func (s *Server) ErrorAnswer(ctx context.Context, err error) (int, string) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		s.logger.Error("dashboard request failed", "err", err)
	}
	return status, s.errorBody(ctx, err).Error
}

// writeTextError writes the error's text, for App Service clients, which
// print an error answer's body as it is.
func writeTextError(_ *Server, w http.ResponseWriter, _ *http.Request, status int, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, err.Error()+"\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
