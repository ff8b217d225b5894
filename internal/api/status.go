package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Status is an app's state at a glance.
type Status struct {
	App     string `json:"app"`
	Release int    `json:"release"`
	Wanted  int    `json:"wanted"`
	Ready   int    `json:"ready"`
	// CrashLooping is true while instances keep exiting soon after start.
	CrashLooping bool `json:"crash_looping"`
	// LastDeployment is the app's latest deployment, without its events.
	LastDeployment *Deployment `json:"last_deployment,omitempty"`
	// Runtime is how the live release runs on this node; left out before
	// the first release.
	Runtime *Runtime `json:"runtime,omitempty"`
	// Traffic is the last minute's requests through the router.
	Traffic   Traffic    `json:"traffic"`
	Instances []Instance `json:"instances"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Status(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// Status is app's state at a glance, as GET …/status answers.
func (s *Server) Status(ctx context.Context, app string) (Status, error) {
	a, err := s.opts.Store.App(ctx, app)
	if err != nil {
		return Status{}, err
	}
	st := Status{App: a.Name, Release: a.CurrentRelease, Wanted: a.Settings.WithDefaults().Instances,
		Instances: instancesOf(s.opts.Deploys.Instances(a.Name)), Traffic: trafficOf(s.opts.Deploys.Traffic(a.Name))}
	for _, i := range st.Instances {
		if i.State == deploy.StateReady {
			st.Ready++
		}
		st.CrashLooping = st.CrashLooping || strings.HasPrefix(i.Note, "crash-looping")
	}
	if st.Runtime, err = s.runtime(ctx, a); err != nil {
		return Status{}, err
	}
	deps, err := s.opts.Store.Deployments(ctx, a.Name)
	if err != nil {
		return Status{}, err
	}
	if len(deps) > 0 {
		d := deps[len(deps)-1]
		d.Events = nil
		st.LastDeployment = new(deploymentOf(d))
	}
	return st, nil
}
