package api

import (
	"net/http"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// meta reads who asks and why from the query: author, message, and wait=1
// to queue behind a running deployment instead of getting 409.
func meta(r *http.Request) deploy.Meta {
	q := r.URL.Query()
	return deploy.Meta{Author: q.Get("author"), Message: q.Get("message"), Wait: isTrue(q.Get("wait"))}
}

func isTrue(v string) bool { return v == "1" || v == "true" }

// SettingsView is an app's settings as the API shows them: secrets masked,
// and the defaults filled in beside the stored values.
type SettingsView struct {
	Settings  settings.Settings `json:"settings"`
	Effective settings.Settings `json:"effective"`
	// Deployment is the deployment that takes a change live, if any.
	Deployment *Deployment `json:"deployment,omitempty"`
}

func settingsView(s settings.Settings, d *store.Deployment) SettingsView {
	m := s.Masked()
	v := SettingsView{Settings: m, Effective: m.WithDefaults()}
	if d != nil {
		v.Deployment = new(deploymentOf(*d))
	}
	return v
}

func (s *Server) showSettings(w http.ResponseWriter, r *http.Request) error {
	a, err := s.opts.Store.App(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, settingsView(a.Settings, nil))
	return nil
}

// changeSettings applies a settings.Change. Query: no_restart=1 records it for
// the next deployment; otherwise it goes live through a deployment (202).
func (s *Server) changeSettings(w http.ResponseWriter, r *http.Request) error {
	var c settings.Change
	if err := decodeJSON(r, &c); err != nil {
		return err
	}
	d, ns, err := s.opts.Deploys.ChangeSettings(r.Context(), r.PathValue("app"), c, isTrue(r.URL.Query().Get("no_restart")), meta(r))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if d != nil {
		status = http.StatusAccepted
	}
	writeJSON(w, status, settingsView(ns, d))
	return nil
}

// ScaleRequest is the body of POST /api/v1/apps/{app}/scale.
type ScaleRequest struct {
	Instances int `json:"instances"`
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) error {
	var req ScaleRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	d, err := s.opts.Deploys.Scale(r.Context(), r.PathValue("app"), req.Instances, meta(r))
	if err != nil {
		return err
	}
	if d == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusAccepted, deploymentOf(*d))
	return nil
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) error {
	d, err := s.opts.Deploys.Restart(r.Context(), r.PathValue("app"), meta(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, deploymentOf(d))
	return nil
}

// RollbackRequest is the body of POST /api/v1/apps/{app}/rollback.
type RollbackRequest struct {
	// To is the release number to go back to; 0 means the one live before
	// the current one.
	To int `json:"to,omitempty"`
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) error {
	var req RollbackRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	d, err := s.opts.Deploys.Rollback(r.Context(), r.PathValue("app"), req.To, meta(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, deploymentOf(d))
	return nil
}
