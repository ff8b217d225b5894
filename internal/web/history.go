package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/deploy"
)

type historyData struct {
	// Deployments and Releases are newest first; Releases only for the
	// admin, as in the API.
	Deployments []api.Deployment
	Releases    []api.Release
	Live        int
	Admin       bool
}

func (d *Dashboard) history(w http.ResponseWriter, r *http.Request, c *call) error {
	deps, err := d.opts.API.Deployments(r.Context(), c.app)
	if err != nil {
		return err
	}
	slices.Reverse(deps)
	data := historyData{Deployments: deps, Admin: c.s.p.Admin}
	if c.s.p.Admin {
		if data.Releases, err = d.opts.API.Releases(r.Context(), c.app); err != nil {
			return err
		}
		slices.Reverse(data.Releases)
		st, err := d.opts.API.Status(r.Context(), c.app)
		if err != nil {
			return err
		}
		data.Live = st.Release
	}
	d.render(w, r, c.s, http.StatusOK, "history", view{Title: "Deployments of " + c.app, App: c.app, Tab: "deployments", Data: data})
	return nil
}

type rollbackData struct {
	To, Live api.Release
	// Next is the number the rollback's release will have.
	Next      int
	Instances int
}

// rollbackPage asks once whether to roll back to release ?to=N.
func (d *Dashboard) rollbackPage(w http.ResponseWriter, r *http.Request, c *call) error {
	to, err := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("to"), "v"))
	if err != nil || to < 1 {
		return badRequest("Pick the release to roll back to from the list of releases.")
	}
	rels, err := d.opts.API.Releases(r.Context(), c.app)
	if err != nil {
		return err
	}
	st, err := d.opts.API.Status(r.Context(), c.app)
	if err != nil {
		return err
	}
	data := rollbackData{Next: len(rels) + 1, Instances: st.Wanted}
	for _, rel := range rels {
		switch rel.Number {
		case to:
			data.To = rel
		case st.Release:
			data.Live = rel
		}
	}
	if data.To.Number == 0 {
		return badRequest(fmt.Sprintf("App %s has no release v%d.", c.app, to))
	}
	d.render(w, r, c.s, http.StatusOK, "rollback", view{Title: "Roll back " + c.app, App: c.app, Tab: "deployments", Data: data})
	return nil
}

func (d *Dashboard) rollback(w http.ResponseWriter, r *http.Request, c *call) error {
	to, err := strconv.Atoi(r.PostForm.Get("to"))
	if err != nil || to < 1 {
		return badRequest("Pick the release to roll back to from the list of releases.")
	}
	dep, err := d.opts.Deploys.Rollback(r.Context(), c.app, to, deploy.Meta{Author: c.s.author(), Message: r.PostForm.Get("message")})
	if err != nil {
		return err
	}
	see(w, r, "/apps/%s/deployments/%d", c.app, dep.ID)
	return nil
}
