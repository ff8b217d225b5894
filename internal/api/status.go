package api

import (
	"net/http"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/router"
	"github.com/slipway-dev/slipway/internal/store"
)

// Status is an app's state at a glance.
type Status struct {
	App     string `json:"app"`
	Release int    `json:"release"`
	Wanted  int    `json:"wanted"`
	Ready   int    `json:"ready"`
	// CrashLooping is true while instances keep exiting soon after start.
	CrashLooping   bool              `json:"crash_looping"`
	LastDeployment *store.Deployment `json:"last_deployment,omitempty"`
	// Traffic is the last minute's requests through the router.
	Traffic   router.Recent           `json:"traffic"`
	Instances []deploy.InstanceStatus `json:"instances"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	a, err := s.opts.Store.App(r.Context(), r.PathValue("app"))
	if err != nil {
		return err
	}
	st := Status{App: a.Name, Release: a.CurrentRelease, Wanted: a.Settings.WithDefaults().Instances,
		Instances: s.opts.Deploys.Instances(a.Name), Traffic: s.opts.Deploys.Traffic(a.Name)}
	if st.Instances == nil {
		st.Instances = []deploy.InstanceStatus{}
	}
	for _, i := range st.Instances {
		if i.State == deploy.StateReady {
			st.Ready++
		}
		st.CrashLooping = st.CrashLooping || strings.HasPrefix(i.Note, "crash-looping")
	}
	deps, err := s.opts.Store.Deployments(r.Context(), a.Name)
	if err != nil {
		return err
	}
	if len(deps) > 0 {
		d := deps[len(deps)-1]
		d.Events = nil
		st.LastDeployment = &d
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
