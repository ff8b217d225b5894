package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/slipway-dev/slipway/internal/lease"
	"github.com/slipway-dev/slipway/internal/store"
)

// listLeases shows the leases an app's instances hold.
func (s *Server) listLeases(w http.ResponseWriter, r *http.Request) error {
	out, err := s.Leases(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Leases lists the leases app's instances hold, as GET …/leases answers.
func (s *Server) Leases(ctx context.Context, app string) ([]Lease, error) {
	if _, err := s.opts.Store.App(ctx, app); err != nil {
		return nil, err
	}
	if s.opts.Leases == nil {
		return []Lease{}, nil
	}
	ls, err := s.opts.Leases.List(ctx, app)
	if err != nil {
		return nil, err
	}
	return leasesOf(ls), nil
}

// LeaseEndpoint is the lease endpoint that instances call at their
// SLIPWAY_LEASE_URL, on a loopback listener of its own:
//
//	POST   /v1/leases/SECRET/NAME?ttl=15s   take or renew lease NAME: 200 and the lease, 409 and its holder
//	GET    /v1/leases/SECRET/NAME           show it: 200, or 404 if nobody holds it
//	DELETE /v1/leases/SECRET/NAME           give it up: 204; 404 if nobody holds it, 409 if another does
//
// The secret is the caller's only credential; it names the instance, and
// so the app, whose leases the call is about. It is checked first (401),
// then the method (405), the name and the TTL (400). Neither the secret
// nor the path that holds it is ever logged.
type LeaseEndpoint struct {
	leases *lease.Service
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewLeaseEndpoint returns the lease endpoint's handler.
func NewLeaseEndpoint(leases *lease.Service, logger *slog.Logger) *LeaseEndpoint {
	if logger == nil {
		logger = slog.Default()
	}
	e := &LeaseEndpoint{leases: leases, logger: logger, mux: http.NewServeMux()}
	const path = "/v1/leases/{secret}/{name...}"
	e.mux.HandleFunc("GET "+path, e.adapt(e.get))
	e.mux.HandleFunc("POST "+path, e.adapt(e.take))
	e.mux.HandleFunc("DELETE "+path, e.adapt(e.release))
	e.mux.HandleFunc(path, e.adapt(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", "GET, POST, DELETE")
		return errorf(http.StatusMethodNotAllowed, "method %s is not allowed on a lease: POST takes or renews it (?ttl=15s), GET shows it, DELETE gives it up", r.Method)
	}))
	e.mux.HandleFunc("/v1/leases/{secret}", e.adapt(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no lease name: call $SLIPWAY_LEASE_URL/NAME")
	}))
	e.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, Error{Error: "no such path on the lease endpoint: call $SLIPWAY_LEASE_URL/NAME, as the instance's environment gives it"})
	})
	return e
}

func (e *LeaseEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// adapt renders a returned error as JSON, with the lease and its holder
// on a 409. The secret is checked before h runs, so that a caller without
// one learns nothing else, not even that the method is wrong.
func (e *LeaseEndpoint) adapt(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, err := e.leases.Who(r.PathValue("secret"))
		if err == nil {
			err = h(w, r)
		}
		if err == nil {
			return
		}
		status := statusOf(err)
		body := Error{Error: err.Error()}
		var held *store.LeaseHeldError
		if errors.As(err, &held) {
			body.Lease = new(leaseOf(held.Lease))
		}
		if status == http.StatusInternalServerError {
			// Not the path: it holds the secret.
			e.logger.Error("lease endpoint request failed", "method", r.Method, "app", who.App, "instance", who.Instance, "err", err)
		}
		writeJSON(w, status, body)
	}
}

// query checks that r's query has no parameter but allowed, each once: a
// mistyped one (tll=5s) is refused rather than ignored, and so is one
// given twice (ttl=5s&ttl=10m), rather than read one way or the other.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "the query cannot be read: %v", err)
	}
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		switch {
		case !ok && len(allowed) == 0:
			return nil, errorf(http.StatusBadRequest, "unknown parameter %q: %s takes none", shortened(k), r.Method)
		case !ok:
			return nil, errorf(http.StatusBadRequest, "unknown parameter %q: %s takes only ttl, like ?ttl=15s", shortened(k), r.Method)
		case len(vs) > 1:
			return nil, errorf(http.StatusBadRequest, "parameter %q is given %d times: give it once", k, len(vs))
		}
	}
	return q, nil
}

func shortened(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

func (e *LeaseEndpoint) take(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "ttl")
	if err != nil {
		return err
	}
	ttl, err := lease.ParseTTL(q.Get("ttl"))
	if err != nil {
		return err
	}
	l, err := e.leases.Take(r.Context(), r.PathValue("secret"), r.PathValue("name"), ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, leaseOf(l))
	return nil
}

func (e *LeaseEndpoint) get(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	l, err := e.leases.Get(r.Context(), r.PathValue("secret"), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, leaseOf(l))
	return nil
}

func (e *LeaseEndpoint) release(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	if err := e.leases.Release(r.Context(), r.PathValue("secret"), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
