package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/slipway-dev/slipway/internal/access"
)

// PolicyView is an app's access restrictions with the action that applies
// when no rule matches.
type PolicyView struct {
	access.Policy
	AppDefault    string `json:"app_default"`
	DeployDefault string `json:"deploy_default"`
}

func policyView(p access.Policy) PolicyView {
	if p.App == nil {
		p.App = access.Rules{}
	}
	if p.Deploy == nil {
		p.Deploy = access.Rules{}
	}
	return PolicyView{Policy: p, AppDefault: p.App.DefaultAction(), DeployDefault: p.Deploy.DefaultAction()}
}

func (s *Server) showPolicy(w http.ResponseWriter, r *http.Request) error {
	app := r.PathValue("app")
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	p, err := s.opts.Store.Policy(r.Context(), app)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, policyView(p))
	return nil
}

// AddRuleRequest is the body of POST …/access/rules.
type AddRuleRequest struct {
	// Scope is "app" (the default) or "deploy".
	Scope    string `json:"scope"`
	Priority int    `json:"priority"`
	Action   string `json:"action"`
	Network  string `json:"network"`
	Name     string `json:"name"`
}

func (s *Server) addRule(w http.ResponseWriter, r *http.Request) error {
	var req AddRuleRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rule, err := access.ParseRule(req.Priority, req.Action, req.Network, req.Name)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return s.updatePolicy(w, r, func(p *access.Policy) error {
		list, err := scopeOf(p, req.Scope)
		if err != nil {
			return err
		}
		*list = list.Put(rule)
		return nil
	})
}

func (s *Server) removeRule(w http.ResponseWriter, r *http.Request) error {
	prio, err := strconv.Atoi(r.PathValue("priority"))
	if err != nil {
		return errorf(http.StatusBadRequest, "priority %q is not a number", r.PathValue("priority"))
	}
	return s.updatePolicy(w, r, func(p *access.Policy) error {
		list, err := scopeOf(p, r.PathValue("scope"))
		if err != nil {
			return err
		}
		var ok bool
		if *list, ok = list.Remove(prio); !ok {
			return errorf(http.StatusNotFound, "there is no %s rule of priority %d; see 'slipway access list -a %s'", r.PathValue("scope"), prio, r.PathValue("app"))
		}
		return nil
	})
}

// PolicyChange is the body of PATCH …/access.
type PolicyChange struct {
	HTTPSOnly *bool `json:"https_only"`
}

func (s *Server) changePolicy(w http.ResponseWriter, r *http.Request) error {
	var req PolicyChange
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	return s.updatePolicy(w, r, func(p *access.Policy) error {
		if req.HTTPSOnly != nil {
			p.HTTPSOnly = *req.HTTPSOnly
		}
		return nil
	})
}

func scopeOf(p *access.Policy, scope string) (*access.Rules, error) {
	if scope == "" {
		scope = access.ScopeApp
	}
	if list := p.Scope(scope); list != nil {
		return list, nil
	}
	return nil, errorf(http.StatusBadRequest, "scope %q: use app (the app's traffic) or deploy (its deploy endpoints)", scope)
}

// updatePolicy changes the app's restrictions and applies them at once.
func (s *Server) updatePolicy(w http.ResponseWriter, r *http.Request, fn func(*access.Policy) error) error {
	app := r.PathValue("app")
	if _, err := s.opts.Store.App(r.Context(), app); err != nil {
		return err
	}
	p, err := s.opts.Store.UpdatePolicy(r.Context(), app, fn)
	if errors.Is(err, access.ErrInvalid) {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if err != nil {
		return err
	}
	s.opts.Deploys.SetPolicy(app, p)
	writeJSON(w, http.StatusOK, policyView(p))
	return nil
}
