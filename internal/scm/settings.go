package scm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/slipway-dev/slipway/internal/settings"
	"github.com/slipway-dev/slipway/internal/store"
)

// deployerSettings names the deployments a settings change through the
// SCM site makes.
const deployerSettings = "Settings"

// showSettings is GET {scm}/api/settings: the app's settings (its
// environment variables) as one flat object, secret values masked. The
// Pipelines tasks call it as a warm-up ping.
func (s *Site) showSettings(w http.ResponseWriter, r *http.Request) error {
	a, err := s.opts.Store.App(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	env := a.Settings.Masked().Env
	if env == nil {
		env = map[string]string{}
	}
	writeJSON(w, http.StatusOK, env)
	return nil
}

// setSettings is POST {scm}/api/settings with {"KEY": "VALUE", …}: one
// settings change, live through a swap like any other. The values are
// ordinary ones (as `config set` without --secret); a secret sent back
// with its mask, as GET shows it, is left as it is.
func (s *Site) setSettings(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	var set map[string]string
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("%w: send the settings as one JSON object of strings, like {\"GREETING\": \"hello\"}: %v", ErrBadRequest, err)
	}
	a, err := s.opts.Store.App(r.Context(), app)
	if err != nil {
		return err
	}
	for k, v := range set {
		if v == settings.SecretMask && a.Settings.IsSecret(k) {
			delete(set, k)
		}
	}
	return s.changeSettings(w, r, settings.Change{Set: set})
}

// deleteSetting is DELETE {scm}/api/settings/{key}: a settings change.
func (s *Site) deleteSetting(w http.ResponseWriter, r *http.Request) error {
	return s.changeSettings(w, r, settings.Change{Unset: []string{r.PathValue("key")}})
}

// changeSettings applies c, and answers as Kudu does, once it is live:
// 204; 422 with the deployment if that failed. With ?isAsync=true it
// answers 202 at once, with the URL to poll.
func (s *Site) changeSettings(w http.ResponseWriter, r *http.Request, c settings.Change) error {
	async, err := boolParam(r.URL.Query(), "isAsync", false)
	if err != nil {
		return err
	}
	m, err := meta(r, deployerSettings)
	if err != nil {
		return err
	}
	d, _, err := s.opts.Deploys.ChangeSettings(r.Context(), r.PathValue("app"), c, false, m)
	switch {
	case errors.Is(err, settings.ErrUnchanged), err == nil && d == nil:
		// Already so, or saved for the first deployment: done, as Kudu
		// would say.
		w.WriteHeader(http.StatusNoContent)
		return nil
	case err != nil:
		return kudu(err)
	case async:
		return s.answer(w, r, *d, true)
	}
	end, err := s.await(r, *d)
	if err != nil {
		return err
	}
	if end.State != store.StateSucceeded {
		return s.writeDeployment(w, r, http.StatusUnprocessableEntity, end)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
