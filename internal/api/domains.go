package api

import (
	"net/http"
)

// AddDomainRequest is the body of POST …/domains.
type AddDomainRequest struct {
	// Name is a DNS name like shop.example.com, or a wildcard like
	// *.shop.example.com.
	Name string `json:"name"`
	// ACME gets the name's certificate from the daemon's ACME CA on the
	// first TLS handshake that asks for it.
	ACME bool `json:"acme"`
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.opts.Deploys.Domains(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, domainsOf(ds))
	return nil
}

// addDomain answers 201 for a new name, 200 for one the app had already
// (its ACME flag is the one asked for now).
func (s *Server) addDomain(w http.ResponseWriter, r *http.Request) error {
	var req AddDomainRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	d, added, err := s.opts.Deploys.AddDomain(r.Context(), r.PathValue("app"), req.Name, req.ACME)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if added {
		status = http.StatusCreated
	}
	writeJSON(w, status, domainOf(d))
	return nil
}

func (s *Server) removeDomain(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Deploys.RemoveDomain(r.Context(), r.PathValue("app"), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
