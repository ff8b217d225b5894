package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/slipway-dev/slipway/internal/api"
)

// App states, as the dashboard shows them, in words and in colour.
const (
	stateRunning      = "running"
	stateDeploying    = "deploying"
	stateCrashLooping = "crash-looping"
	stateStopped      = "stopped"
)

// appRow is one app of the apps page.
type appRow struct {
	Name   string
	Status api.Status
	State  string
}

// stateOf says what an app is doing: deploying while a deployment runs,
// crash-looping while its instances keep exiting, running while an
// instance is ready, stopped otherwise.
func stateOf(deploying int, st api.Status) string {
	switch {
	case deploying != 0:
		return stateDeploying
	case st.CrashLooping:
		return stateCrashLooping
	case st.Ready > 0:
		return stateRunning
	default:
		return stateStopped
	}
}

// appRows lists every app with its state.
func (d *Dashboard) appRows(ctx context.Context) ([]appRow, error) {
	apps, err := d.opts.API.Apps(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]appRow, 0, len(apps))
	for _, a := range apps {
		st, err := d.opts.API.Status(ctx, a.Name)
		if err != nil {
			continue // deleted since the list was read
		}
		rows = append(rows, appRow{Name: a.Name, Status: st, State: stateOf(a.Deploying, st)})
	}
	return rows, nil
}

func (d *Dashboard) appsPage(w http.ResponseWriter, r *http.Request, c *call) error {
	rows, err := d.appRows(r.Context())
	if err != nil {
		return err
	}
	d.render(w, r, c.s, http.StatusOK, "apps", view{Title: "Apps", Data: rows})
	return nil
}

// appsLive sends the apps table again and again (see live).
func (d *Dashboard) appsLive(w http.ResponseWriter, r *http.Request, c *call) error {
	return d.live(w, r, func(ctx context.Context) (string, error) {
		rows, err := d.appRows(ctx)
		if err != nil {
			return "", err
		}
		return d.fragment("apps", "apps-live", view{Data: rows})
	})
}

func (d *Dashboard) createApp(w http.ResponseWriter, r *http.Request, c *call) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	a, err := d.opts.API.CreateApp(r.Context(), api.CreateAppRequest{Name: name})
	if err != nil {
		return err
	}
	d.sessions.setFlash(c.s, fmt.Sprintf("App %s created. Deploy a jar, war or zip to it to start it.", a.Name))
	see(w, r, "/apps/%s", a.Name)
	return nil
}

// deleteApp deletes the app once the form names it again.
func (d *Dashboard) deleteApp(w http.ResponseWriter, r *http.Request, c *call) error {
	if r.PostForm.Get("confirm") != c.app {
		return badRequest(fmt.Sprintf("To delete app %s, type its name in the box: deleting stops its instances and removes its releases, deployments and logs.", c.app))
	}
	if err := d.opts.Deploys.DeleteApp(r.Context(), c.app); err != nil {
		return err
	}
	d.sessions.setFlash(c.s, fmt.Sprintf("App %s deleted.", c.app))
	see(w, r, "/")
	return nil
}
