package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// meta reads who asks and why from the query, author and message, and
// whether to queue behind a running deployment instead of getting 409:
// queue=1, or wait=1 (see answerChange) unless queue=0. (Before wait=1
// waited for the end of the change, it meant queue=1; it still does.)
func meta(r *http.Request) deploy.Meta {
	q := r.URL.Query()
	queue := isTrue(q.Get("wait"))
	if q.Has("queue") {
		queue = isTrue(q.Get("queue"))
	}
	return deploy.Meta{Author: q.Get("author"), Message: q.Get("message"), Wait: queue}
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
	v, err := s.Settings(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// Settings are app's settings, secrets masked, as GET …/settings answers.
func (s *Server) Settings(ctx context.Context, app string) (SettingsView, error) {
	a, err := s.opts.Store.App(ctx, app)
	if err != nil {
		return SettingsView{}, err
	}
	return settingsView(a.Settings, nil), nil
}

// SettingsChange is the answer to a settings change: the settings after
// it, and what it did.
type SettingsChange struct {
	SettingsView
	// Changed is false for a change that changed nothing (unset of a
	// variable that is not set, a value it has already, …): it made no
	// release and no deployment, and Message says why.
	Changed bool `json:"changed"`
	// Message says what happened, for people.
	Message string `json:"message,omitempty"`
}

// NoChange is the answer to a scale that changed nothing.
type NoChange struct {
	Changed bool   `json:"changed"` // false
	Message string `json:"message"`
}

// changeSettings applies a settings.Change. Query: no_restart=1 records it
// for the next deployment (200); otherwise it goes live through a
// deployment (202, or see answerChange). A change that changes nothing
// answers 200 with changed false.
func (s *Server) changeSettings(w http.ResponseWriter, r *http.Request) error {
	var c settings.Change
	if err := decodeJSON(r, &c); err != nil {
		return err
	}
	app := r.PathValue("app")
	d, ns, err := s.opts.Deploys.ChangeSettings(r.Context(), app, c, isTrue(r.URL.Query().Get("no_restart")), meta(r))
	if errors.Is(err, settings.ErrUnchanged) {
		writeJSON(w, http.StatusOK, SettingsChange{SettingsView: settingsView(ns, nil), Message: err.Error()})
		return nil
	}
	if err != nil {
		return err
	}
	if d == nil {
		writeJSON(w, http.StatusOK, SettingsChange{SettingsView: settingsView(ns, nil), Changed: true,
			Message: fmt.Sprintf("settings of %s saved; they take effect at the next deployment", app)})
		return nil
	}
	return s.answerChange(w, r, *d, func(d store.Deployment) any {
		return SettingsChange{SettingsView: settingsView(ns, &d), Changed: true}
	})
}

// ScaleRequest is the body of POST /api/v1/apps/{app}/scale.
type ScaleRequest struct {
	Instances int `json:"instances"`
}

// scale answers 204 when the app has no live release (the count is
// recorded for its first deployment), 200 with NoChange when it has the
// count already, else as answerChange.
func (s *Server) scale(w http.ResponseWriter, r *http.Request) error {
	var req ScaleRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	d, err := s.opts.Deploys.Scale(r.Context(), r.PathValue("app"), req.Instances, meta(r))
	if errors.Is(err, settings.ErrUnchanged) {
		writeJSON(w, http.StatusOK, NoChange{Message: err.Error()})
		return nil
	}
	if err != nil {
		return err
	}
	if d == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return s.answerChange(w, r, *d, deploymentBody)
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) error {
	d, err := s.opts.Deploys.Restart(r.Context(), r.PathValue("app"), meta(r))
	if err != nil {
		return err
	}
	return s.answerChange(w, r, d, deploymentBody)
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
	return s.answerChange(w, r, d, deploymentBody)
}
