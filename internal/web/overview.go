package web

import (
	"context"
	"net/http"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/router"
)

// overviewData is one app at a glance.
type overviewData struct {
	App    api.App
	Status api.Status
	State  string
	// Live is the live release; nil before the first.
	Live *api.Release
	// Traffic is the last hour, a minute each.
	Traffic []router.Minute
	// Admin may see releases and delete the app.
	Admin bool
}

// overviewOf gathers the overview of app. A deploy credential may read
// the app's status but not its releases (as in the API), so its overview
// leaves out what the live release changed.
func (d *Dashboard) overviewOf(ctx context.Context, c *call) (overviewData, error) {
	st, err := d.opts.API.Status(ctx, c.app)
	if err != nil {
		return overviewData{}, err
	}
	out := overviewData{Status: st, Traffic: d.opts.Deploys.TrafficHistory(c.app), Admin: c.s.p.Admin}
	if c.s.p.Admin {
		if out.App, err = d.opts.API.App(ctx, c.app); err != nil {
			return overviewData{}, err
		}
		rels, err := d.opts.API.Releases(ctx, c.app)
		if err != nil {
			return overviewData{}, err
		}
		for i := range rels {
			if rels[i].Number == st.Release {
				out.Live = &rels[i]
			}
		}
	} else {
		out.App = api.App{Name: c.app}
		if st.LastDeployment != nil && st.LastDeployment.State == api.StateRunning {
			out.App.Deploying = st.LastDeployment.ID
		}
	}
	out.State = stateOf(out.App.Deploying, st)
	return out, nil
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, c *call) error {
	data, err := d.overviewOf(r.Context(), c)
	if err != nil {
		return err
	}
	d.render(w, r, c.s, http.StatusOK, "overview", view{Title: c.app, App: c.app, Tab: "overview", Data: data})
	return nil
}

// overviewLive sends the overview's live part again and again: state,
// instances, last deployment, traffic and its chart.
func (d *Dashboard) overviewLive(w http.ResponseWriter, r *http.Request, c *call) error {
	return d.live(w, r, func(ctx context.Context) (string, error) {
		data, err := d.overviewOf(ctx, c)
		if err != nil {
			return "", err
		}
		return d.fragment("overview", "overview-live", view{App: c.app, Data: data})
	})
}
